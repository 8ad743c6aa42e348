package registry

import (
	"fmt"
	"strings"
)

// UnreachableError is a registry that could not be talked to.
type UnreachableError struct {
	Registry string
	Err      error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach registry %s: %v", e.Registry, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// UnauthorizedError is a 401 or 403: credentials missing or refused.
type UnauthorizedError struct {
	Registry string
	Status   int
	Used     string   // the file whose credentials were sent, "" for none
	Fill     []string // where credentials are looked for
}

func (e *UnauthorizedError) Error() string {
	first := "/etc/imgbased/auth.json"
	if len(e.Fill) > 0 {
		first = e.Fill[0]
	}
	if e.Used != "" {
		return fmt.Sprintf("registry %s refused the credentials from %s (HTTP %d): correct them there", e.Registry, e.Used, e.Status)
	}
	return fmt.Sprintf("registry %s needs credentials (HTTP %d): put them in %s (e.g. with `podman login --authfile %s %s`)", e.Registry, e.Status, first, first, e.Registry)
}

// NotFoundError is a tag, digest or blob the source does not have.
type NotFoundError struct {
	Ref    string
	What   string // "manifest", "layer sha256:…", …
	Detail string // what the source has instead, when known
}

func (e *NotFoundError) Error() string {
	if e.What == "manifest" {
		d := e.Detail
		if d == "" {
			d = "no such tag or digest"
		}
		return fmt.Sprintf("image %s not found: %s", e.Ref, d)
	}
	return fmt.Sprintf("image %s: %s not found", e.Ref, e.What)
}

// DigestError is content that does not hash to the digest naming it.
type DigestError struct {
	What      string
	Want, Got string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("%s does not match its digest %s (got %s): corrupt or tampered", e.What, e.Want, e.Got)
}

// PlatformError is a multi-arch image without the host's platform.
type PlatformError struct {
	Ref  string
	Want string
	Have []string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("image %s has no %s image; it has: %s", e.Ref, e.Want, strings.Join(e.Have, ", "))
}

// InsecureError is a registry that would need plain HTTP (or an
// unverified certificate) without being listed as insecure.
type InsecureError struct{ Registry string }

func (e *InsecureError) Error() string {
	return fmt.Sprintf("registry %s is not served over trusted HTTPS; list it in insecure_registries to allow plain HTTP", e.Registry)
}
