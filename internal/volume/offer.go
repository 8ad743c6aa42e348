package volume

// Offer is a volume suggested to the admin.
type Offer struct {
	Path string `json:"path"`
	// Size is a suggestion in lvm2's notation; a thin volume takes pool
	// space only for what is written, so generous sizes cost nothing now.
	Size string `json:"size"`
	Why  string `json:"why"`
}

// Defaults is the original imgbased's set of volumes, parents before
// children (the order to create them in), with oVirt Node's sizes.
func Defaults() []Offer {
	return []Offer{
		{"/var", "15G", "variable data every layer shares (package state, databases, spools)"},
		{"/var/log", "8G", "logs survive switching layers"},
		{"/var/log/audit", "2G", "a full audit log cannot fill /var/log"},
		{"/var/tmp", "10G", "temporary files kept across reboots"},
		{"/var/crash", "10G", "kernel crash dumps of any layer"},
		{"/home", "1G", "users' files"},
	}
}
