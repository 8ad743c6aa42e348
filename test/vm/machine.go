//go:build vm

// Package vm boots the test disk image under QEMU and drives the guest
// through its agent (see package wire), for tests that need a real kernel:
// LVM, GRUB and booting cannot run on the development host.
//
// A Machine is one QEMU process over a copy-on-write overlay of the cached
// raw image, so every test starts from the freshly installed host. It lives
// across guest reboots: the agent connection is re-established and the boot
// ID tells one boot from the next. Its serial console is kept in a log that
// Boot saves under test/vm/logs/ when the test fails.
package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imgbase/imgbase/test/vm/wire"
)

// Options say what to boot and how.
type Options struct {
	Disk string // disk image; never written, an overlay takes the writes
	// DiskFormat is Disk's format: "" is raw (the built host image); a
	// prepared image (see BootLayered) is qcow2.
	DiskFormat string
	Payload    string // optional raw disk attached read-only (the test OS images)
	// ExtraDisks are more raw disks attached read-only after Payload.
	ExtraDisks []string
	Accel      string // "tcg" or "kvm"
	Memory     int    // MiB
	CPUs       int
	Dir        string // where the overlay, socket and serial log live
	Logger     *slog.Logger
	// Cache is QEMU's cache mode for the overlay; "" is unsafe (guest
	// flushes ignored: fast, and nothing is lost unless QEMU itself dies).
	// A machine whose QEMU is killed on purpose (a power cut) needs
	// writeback: see PowerCut.
	Cache string
	// UEFI, when set, boots OVMF instead of SeaBIOS.
	UEFI *Firmware
	// LogSuffix names a failed test's saved serial log apart from the
	// test's own guest's (for the preparation of BootLayered's image).
	LogSuffix string
}

// Firmware is an OVMF build: Code is mapped read-only, Vars is copied per
// machine (Start) and holds its EFI variables across reboots and power
// cuts (systemd-boot's one-shot entry lives there).
type Firmware struct {
	Code, Vars string
}

// Machine is a running QEMU guest.
type Machine struct {
	opts    Options
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	log     *slog.Logger

	mu     sync.Mutex // one request at a time
	nextID uint64
	conn   net.Conn
	resps  chan wire.Response
}

// SerialLog is the path of the guest's serial console log.
func (m *Machine) SerialLog() string { return filepath.Join(m.opts.Dir, "serial.log") }

// Start creates the overlay and starts QEMU; it does not wait for the guest.
func Start(o Options) (*Machine, error) {
	overlay := filepath.Join(o.Dir, "disk.qcow2")
	format := o.DiskFormat
	if format == "" {
		format = "raw"
	}
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", format,
		"-b", o.Disk, overlay).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cannot create overlay of %s: %w: %s", o.Disk, err, out)
	}
	if o.UEFI != nil {
		vars, err := os.ReadFile(o.UEFI.Vars)
		if err == nil {
			err = os.WriteFile(filepath.Join(o.Dir, "efivars.fd"), vars, 0o644)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot copy the EFI variable store: %w", err)
		}
	}
	return Launch(o)
}

// Launch starts QEMU on the overlay already in o.Dir, as it was left: after
// Kill, that is a power-on after a power cut.
func Launch(o Options) (*Machine, error) {
	if o.Memory == 0 {
		o.Memory = 1024
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.Accel == "" {
		o.Accel = "tcg"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Cache == "" {
		o.Cache = "unsafe"
	}
	overlay := filepath.Join(o.Dir, "disk.qcow2")
	sock := filepath.Join(o.Dir, "agent.sock")
	args := []string{
		"-accel", o.Accel, "-m", strconv.Itoa(o.Memory), "-smp", strconv.Itoa(o.CPUs),
		// No floppy, CD-ROM or VGA: probing them costs seconds under TCG.
		"-nodefaults", "-display", "none", "-nic", "none",
		// The human monitor, to see where a guest that stopped answering is.
		"-monitor", "unix:" + filepath.Join(o.Dir, "monitor.sock") + ",server=on,wait=off",
		// Appended to, so that a machine launched again on the same
		// directory (a power cycle) keeps one log of all its boots.
		"-chardev", "file,id=serial0,append=on,path=" + filepath.Join(o.Dir, "serial.log"),
		"-serial", "chardev:serial0",
		"-drive", "file=" + overlay + ",format=qcow2,if=virtio,cache=" + o.Cache + ",discard=unmap",
		"-chardev", "socket,id=agent,path=" + sock + ",server=on,wait=off",
		"-device", "virtio-serial-pci",
		"-device", "virtserialport,chardev=agent,name=" + wire.PortName,
	}
	if o.Payload != "" {
		args = append(args, "-drive", "file="+o.Payload+",format=raw,if=virtio,readonly=on")
	}
	for _, d := range o.ExtraDisks {
		args = append(args, "-drive", "file="+d+",format=raw,if=virtio,readonly=on")
	}
	if o.UEFI != nil {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+o.UEFI.Code,
			"-drive", "if=pflash,format=raw,unit=1,file="+filepath.Join(o.Dir, "efivars.fd"))
	}
	if o.Accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	m := &Machine{opts: o, exited: make(chan struct{}), log: o.Logger, resps: make(chan wire.Response, 16)}
	m.cmd = exec.Command("qemu-system-x86_64", args...)
	// A test binary that dies (the panic of go test's timeout) must not
	// leave its guests running: each would keep a core busy until killed
	// by hand, and the next run would share the machine with them.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := os.Create(filepath.Join(o.Dir, "qemu.stderr"))
	if err != nil {
		return nil, fmt.Errorf("cannot create qemu log: %w", err)
	}
	m.cmd.Stderr = stderr
	if err := m.cmd.Start(); err != nil {
		stderr.Close()
		return nil, fmt.Errorf("cannot start qemu: %w", err)
	}
	go func() {
		m.exitErr = m.cmd.Wait()
		stderr.Close()
		close(m.exited)
	}()
	m.log.Info("qemu started", "pid", m.cmd.Process.Pid, "accel", o.Accel, "dir", o.Dir)
	// QEMU makes the socket before the guest runs; the connection then
	// survives guest reboots.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			m.conn = c
			break
		}
		select {
		case <-m.exited:
			b, _ := os.ReadFile(filepath.Join(o.Dir, "qemu.stderr"))
			return nil, fmt.Errorf("qemu exited at start: %v: %s", m.exitErr, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Kill()
			return nil, fmt.Errorf("cannot connect to agent socket: %w", err)
		}
	}
	go m.readLoop()
	return m, nil
}

func (m *Machine) readLoop() {
	sc := bufio.NewScanner(m.conn)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		var r wire.Response
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			// A guest reboot can cut a line; the request will time out.
			m.log.Warn("undecodable agent line", "err", err)
			continue
		}
		m.resps <- r
	}
	close(m.resps)
}

// ErrTimeout is returned when the agent did not answer in time.
var ErrTimeout = errors.New("timed out waiting for the guest agent")

// Do sends one request and waits up to timeout for its answer.
func (m *Machine) Do(req wire.Request, timeout time.Duration) (wire.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	req.ID = m.nextID
	line, err := json.Marshal(req)
	if err != nil {
		return wire.Response{}, fmt.Errorf("cannot encode request: %w", err)
	}
	m.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := m.conn.Write(append(line, '\n')); err != nil {
		return wire.Response{}, fmt.Errorf("cannot send %s request: %w", req.Op, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-m.resps:
			if !ok {
				return wire.Response{}, errors.New("agent connection closed")
			}
			if r.ID != req.ID {
				continue // the answer to an abandoned request
			}
			return r, nil
		case <-m.exited:
			return wire.Response{}, fmt.Errorf("qemu exited: %v", m.exitErr)
		case <-timer.C:
			return wire.Response{}, fmt.Errorf("%s request after %s: %w", req.Op, timeout, ErrTimeout)
		}
	}
}

// Ping returns the guest's boot ID when the agent answers within timeout.
func (m *Machine) Ping(timeout time.Duration) (string, error) {
	r, err := m.Do(wire.Request{Op: wire.OpPing}, timeout)
	return r.BootID, err
}

// WaitReady waits until the agent answers with a boot ID other than notBoot.
func (m *Machine) WaitReady(ctx context.Context, notBoot string) (string, error) {
	for {
		id, err := m.Ping(3 * time.Second)
		if err == nil && id != "" && id != notBoot {
			return id, nil
		}
		if err != nil && !errors.Is(err, ErrTimeout) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("guest agent not ready: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// Ready waits for the agent of a boot other than notBoot, then mounts the
// payload disk (if any) at PayloadDir.
func (m *Machine) Ready(ctx context.Context, notBoot string) error {
	if _, err := m.WaitReady(ctx, notBoot); err != nil {
		return err
	}
	if m.opts.Payload == "" {
		return nil
	}
	r, err := m.Shell(time.Minute, "mkdir -p "+PayloadDir+" && { mountpoint -q "+PayloadDir+
		" || mount -o ro LABEL=payload "+PayloadDir+"; }")
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	if err != nil {
		return fmt.Errorf("cannot mount the payload disk: %w", err)
	}
	return nil
}

// CopyIn copies a host file into the guest.
func (m *Machine) CopyIn(host, guest string, mode os.FileMode) error {
	b, err := os.ReadFile(host)
	if err != nil {
		return fmt.Errorf("cannot copy %s into the guest: %w", host, err)
	}
	return m.WriteFile(guest, b, mode)
}

// Result is what a command in the guest did.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Run runs argv in the guest. A non-zero exit is not an error; a command
// still running after timeout is killed and reported as an error.
func (m *Machine) Run(timeout time.Duration, argv ...string) (Result, error) {
	return m.run(wire.Request{Op: wire.OpRun, Argv: argv}, timeout)
}

// Shell runs a /bin/sh line in the guest.
func (m *Machine) Shell(timeout time.Duration, line string) (Result, error) {
	return m.run(wire.Request{Op: wire.OpRun, Shell: line}, timeout)
}

func (m *Machine) run(req wire.Request, timeout time.Duration) (Result, error) {
	req.TimeoutMS = timeout.Milliseconds()
	r, err := m.Do(req, timeout+30*time.Second)
	res := Result{Stdout: string(r.Stdout), Stderr: string(r.Stderr), ExitCode: r.ExitCode}
	if err != nil {
		return res, err
	}
	if r.Err != "" {
		return res, fmt.Errorf("cannot run in guest: %s", r.Err)
	}
	return res, nil
}

// WriteFile writes data to path in the guest.
func (m *Machine) WriteFile(path string, data []byte, mode os.FileMode) error {
	r, err := m.Do(wire.Request{Op: wire.OpWrite, Path: path, Data: data, Mode: uint32(mode.Perm())}, 5*time.Minute)
	if err == nil && r.Err != "" {
		err = errors.New(r.Err)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s in guest: %w", path, err)
	}
	return nil
}

// ReadFile returns the content of path in the guest.
func (m *Machine) ReadFile(path string) ([]byte, error) {
	r, err := m.Do(wire.Request{Op: wire.OpRead, Path: path}, 5*time.Minute)
	if err == nil && r.Err != "" {
		err = errors.New(r.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s in guest: %w", path, err)
	}
	return r.Data, nil
}

// Reboot reboots the guest and waits for the agent of the next boot.
func (m *Machine) Reboot(ctx context.Context) error {
	old, err := m.Ping(30 * time.Second)
	if err != nil {
		return fmt.Errorf("cannot reboot: %w", err)
	}
	if _, err := m.Do(wire.Request{Op: wire.OpReboot}, 30*time.Second); err != nil {
		return fmt.Errorf("cannot reboot: %w", err)
	}
	if _, err := m.WaitReady(ctx, old); err != nil {
		return fmt.Errorf("guest did not come back after reboot: %w", err)
	}
	return nil
}

// Options are the options the machine was started with.
func (m *Machine) Options() Options { return m.opts }

// WaitExit waits up to timeout for QEMU to exit by itself (a guest
// poweroff); QEMU then has flushed and closed the overlay.
func (m *Machine) WaitExit(timeout time.Duration) error {
	select {
	case <-m.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("qemu still running %s after the guest was told to power off", timeout)
	}
}

// Kill stops QEMU at once (SIGKILL) and waits for it.
func (m *Machine) Kill() {
	if m.cmd.Process != nil {
		m.cmd.Process.Kill()
	}
	<-m.exited
	if m.conn != nil {
		m.conn.Close()
	}
}

func wireReboot() wire.Request { return wire.Request{Op: wire.OpReboot} }

// Monitor runs human monitor commands and returns what QEMU answered: for
// a guest that stopped answering, where its vCPUs are.
func (m *Machine) Monitor(cmds ...string) (string, error) {
	c, err := net.DialTimeout("unix", filepath.Join(m.opts.Dir, "monitor.sock"), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	prompt := func() (string, error) {
		var b strings.Builder
		for !strings.HasSuffix(b.String(), "(qemu) ") {
			ch, err := r.ReadByte()
			if err != nil {
				return b.String(), err
			}
			b.WriteByte(ch)
		}
		return b.String(), nil
	}
	if _, err := prompt(); err != nil {
		return "", err
	}
	var out strings.Builder
	for _, cmd := range cmds {
		if _, err := io.WriteString(c, cmd+"\n"); err != nil {
			return out.String(), err
		}
		ans, err := prompt()
		// The monitor echoes the command line with terminal escapes.
		ans = strings.ReplaceAll(strings.TrimSuffix(ans[strings.IndexByte(ans, '\n')+1:], "(qemu) "), "\r\n", "\n")
		out.WriteString("(qemu) " + cmd + "\n" + ans)
		if err != nil {
			return out.String(), err
		}
	}
	return out.String(), nil
}
