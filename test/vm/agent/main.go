// Command agent runs inside test guests and executes the harness's requests
// (see package wire) arriving on a virtio-serial port. The guest reboots
// often, and the host side may connect late or go away, so the agent never
// exits on I/O errors: it reopens the port and waits.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/imgbase/imgbase/test/vm/wire"
)

func main() {
	log.SetFlags(0)
	for {
		dev, err := findPort(wire.PortName)
		if err != nil {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		if err := serve(f, f); err != nil && !errors.Is(err, io.EOF) {
			log.Printf("agent: %v", err)
		}
		f.Close()
		// EOF means the host side is not connected: do not spin.
		time.Sleep(200 * time.Millisecond)
	}
}

// findPort looks the port up by name in sysfs, so the agent does not
// depend on udev having made /dev/virtio-ports links yet.
func findPort(name string) (string, error) {
	names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(n)), nil
		}
	}
	return "", fmt.Errorf("cannot find virtio port %s", name)
}

func serve(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 1<<20)
	enc := json.NewEncoder(w)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 && err == nil {
			var req wire.Request
			var resp wire.Response
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				resp.Err = "cannot decode request: " + jerr.Error()
			} else {
				resp = handle(req)
			}
			resp.ID = req.ID
			if werr := enc.Encode(resp); werr != nil {
				return werr
			}
			after(req)
		}
		if err != nil {
			return err
		}
	}
}

func handle(req wire.Request) wire.Response {
	switch req.Op {
	case wire.OpPing, wire.OpReboot, wire.OpPoweroff:
		b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
		return wire.Response{BootID: strings.TrimSpace(string(b))}
	case wire.OpRun:
		return run(req)
	case wire.OpWrite:
		if err := writeFile(req.Path, req.Data, os.FileMode(req.Mode)); err != nil {
			return wire.Response{Err: err.Error()}
		}
		return wire.Response{}
	case wire.OpRead:
		b, err := os.ReadFile(req.Path)
		if err != nil {
			return wire.Response{Err: err.Error()}
		}
		return wire.Response{Data: b}
	}
	return wire.Response{Err: fmt.Sprintf("unknown op %q", req.Op)}
}

// after does what must happen once the answer is on its way.
func after(req wire.Request) {
	var argv []string
	switch req.Op {
	case wire.OpReboot:
		argv = []string{"systemctl", "reboot"}
	case wire.OpPoweroff:
		argv = []string{"systemctl", "poweroff"}
	default:
		return
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		if err := exec.Command(argv[0], argv[1:]...).Run(); err != nil {
			// systemd is wedged: force it.
			exec.Command(argv[1], "-f").Run()
		}
	}()
}

func run(req wire.Request) wire.Response {
	argv := req.Argv
	if req.Shell != "" {
		argv = []string{"/bin/sh", "-c", req.Shell}
	}
	if len(argv) == 0 {
		return wire.Response{Err: "nothing to run"}
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LANG=C", "LC_ALL=C",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Kill the whole process group, so a timed-out shell line takes its
	// children with it.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if req.Stdin != nil {
		cmd.Stdin = bytes.NewReader(req.Stdin)
	}
	err := cmd.Run()
	resp := wire.Response{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		resp.TimedOut, resp.ExitCode = true, -1
		resp.Err = fmt.Sprintf("timed out after %s", timeout)
	case errors.As(err, &ee):
		resp.ExitCode = ee.ExitCode()
	case err != nil:
		resp.ExitCode, resp.Err = -1, err.Error()
	}
	return resp
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if mode == 0 {
		mode = 0o644
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".agent-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
