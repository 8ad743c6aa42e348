// Package wire is the protocol between the VM test harness and the guest
// agent: one JSON object per line over a virtio-serial port, each request
// answered by exactly one response carrying the same ID. The agent serves
// requests one at a time; a response whose ID the harness no longer waits
// for (it timed out, or the guest rebooted in between) is dropped.
package wire

// PortName is the virtio-serial port name the agent looks for.
const PortName = "imgbase.agent"

// Operations a Request can ask for.
const (
	OpPing     = "ping"     // answer with the boot ID; proves the agent is up
	OpRun      = "run"      // run Argv, or Shell with /bin/sh -c
	OpWrite    = "write"    // write Data to Path with Mode, creating parents
	OpRead     = "read"     // return the content of Path in Data
	OpReboot   = "reboot"   // answer, then reboot the guest
	OpPoweroff = "poweroff" // answer, then power the guest off
)

// Request is one line from the harness.
type Request struct {
	ID        uint64   `json:"id"`
	Op        string   `json:"op"`
	Argv      []string `json:"argv,omitempty"`
	Shell     string   `json:"shell,omitempty"`
	Stdin     []byte   `json:"stdin,omitempty"`
	TimeoutMS int64    `json:"timeout_ms,omitempty"`
	Path      string   `json:"path,omitempty"`
	Data      []byte   `json:"data,omitempty"`
	Mode      uint32   `json:"mode,omitempty"`
}

// Response is one line from the agent. Err is set when the operation
// itself could not be done (a command that ran and exited non-zero is not
// an error: see ExitCode).
type Response struct {
	ID       uint64 `json:"id"`
	ExitCode int    `json:"exit_code"`
	Stdout   []byte `json:"stdout,omitempty"`
	Stderr   []byte `json:"stderr,omitempty"`
	Data     []byte `json:"data,omitempty"`
	BootID   string `json:"boot_id,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	Err      string `json:"err,omitempty"`
}
