package boot

import (
	"os"
	"strings"
	"testing"
)

// unitKeys reads a unit file's "Section.Key" settings.
func unitKeys(t *testing.T, name string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	keys, section := map[string]string{}, ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not KEY=VALUE", name, line)
			}
			keys[section+"."+k] = v
		}
	}
	return keys
}

// The timer and its service are what the package ships for the daily
// update: daily, spread over the day, caught up after downtime, staging
// the followed image and rebooting only as configured.
func TestUpdateUnits(t *testing.T) {
	timer := unitKeys(t, "imgbase-update.timer")
	for k, want := range map[string]string{
		"Timer.OnCalendar": "daily", "Timer.RandomizedDelaySec": "1d", "Timer.Persistent": "true",
		"Install.WantedBy": "timers.target",
	} {
		if timer[k] != want {
			t.Errorf("timer %s = %q, want %q", k, timer[k], want)
		}
	}
	svc := unitKeys(t, "imgbase-update.service")
	for k, want := range map[string]string{
		"Service.Type": "oneshot", "Service.ExecStart": PackagedBinary + " update --auto-reboot",
		"Unit.Wants": "network-online.target",
	} {
		if svc[k] != want {
			t.Errorf("service %s = %q, want %q", k, svc[k], want)
		}
	}
	// The service runs from the timer only: no [Install] of its own.
	for k := range svc {
		if strings.HasPrefix(k, "Install.") {
			t.Errorf("service has %s", k)
		}
	}
}
