package journal

import (
	"bytes"
	"testing"
)

// FuzzUnmarshalRecord: any file is either refused or read as a journal
// that writes back to an equal one, so Recover never acts on a misreading.
func FuzzUnmarshalRecord(f *testing.F) {
	w := world{dir: "/nonexistent"}
	r := newRecord(w.updateTx(), "", testTime)
	seed, _ := r.marshal()
	f.Add(seed)
	r.Steps[0].State, r.Steps[1].State = stateDone, stateTrying
	seed, _ = r.marshal()
	f.Add(seed)
	r.Phase = phaseRollingBack
	r.Steps[0].State = stateUndone
	seed, _ = r.marshal()
	f.Add(seed)
	f.Add([]byte(`{"version":1,"tx":"x","phase":"committed","steps":[],"after_commit":[{"kind":"k","state":"trying"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := unmarshalRecord(data)
		if err != nil {
			return
		}
		out, err := r.marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := unmarshalRecord(out)
		if err != nil {
			t.Fatalf("a journal it read is refused once written back: %v\n%s", err, out)
		}
		out2, _ := r2.marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}
