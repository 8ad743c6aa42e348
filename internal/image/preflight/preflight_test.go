package preflight

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	KiB = int64(1) << 10
	MiB = KiB << 10
	GiB = MiB << 10
)

func pool10G(dataPct, metaPct float64) Pool {
	return Pool{Name: "HostVG/pool00", Size: 10 * GiB, MetadataSize: 64 * MiB, DataPercent: dataPct, MetadataPercent: metaPct, Chunk: 64 * KiB}
}

var plan = Plan{FSSize: 4 * GiB, LVSize: 5 * GiB, ImageData: 1500 * MiB, LayerData: 20 * MiB, NewLVs: 2}
var boot = Boot{Free: 300 * MiB, Needed: 80 * MiB}

func TestNeeds(t *testing.T) {
	p := pool10G(0, 0)
	// One byte past a chunk boundary costs a whole chunk, in each LV.
	n := Needs(p, boot, Plan{ImageData: 64*KiB + 1, LayerData: 1, NewLVs: 2})
	want := Need{Data: 3 * 64 * KiB, Metadata: 3*MetadataPerChunk + 2*MetadataPerDevice, Boot: 80 * MiB}
	if n != want {
		t.Fatalf("got %+v, want %+v", n, want)
	}
	if n := Needs(p, Boot{}, Plan{}); n != (Need{}) {
		t.Fatalf("empty plan needs %+v", n)
	}
}

func TestFits(t *testing.T) {
	if err := Check(pool10G(50, 10), boot, plan, nil); err != nil {
		t.Fatal(err)
	}
}

func TestImageTooLarge(t *testing.T) {
	p := plan
	p.LVSize = 3 * GiB
	err := Check(pool10G(0, 0), boot, p, nil)
	if !errors.Is(err, ErrImageTooLarge) || !strings.Contains(err.Error(), "--size of at least 4.0 GiB") {
		t.Fatalf("got %v", err)
	}
}

func TestPoolDataShort(t *testing.T) {
	// 90% of 10 GiB used: 1 GiB free, 1520 MiB needed (+ chunk rounding).
	rm := []Removable{{"Base-1-0", 300 * MiB, 40 * MiB}, {"Base-1-1", 400 * MiB, 40 * MiB}, {"Base-1-2", 900 * MiB, 40 * MiB}}
	err := Check(pool10G(90, 10), boot, plan, rm)
	var se *ShortageError
	if !errors.As(err, &se) || !errors.Is(err, ErrNoSpace) {
		t.Fatalf("got %v", err)
	}
	free := int64(float64(10*GiB) * 10 / 100)
	want := []Shortage{{
		What: "pool data", Need: 1520 * MiB, Free: free,
		Remove: []string{"Base-1-0", "Base-1-1"}, Enough: true,
		Hint: "grow the pool: lvextend -L +496M HostVG/pool00",
	}}
	if !reflect.DeepEqual(se.Shortages, want) {
		t.Fatalf("got %+v\nwant %+v", se.Shortages, want)
	}
	msg := err.Error()
	for _, s := range []string{"pool data: need 1.5 GiB, free 1.0 GiB", "remove Base-1-0, Base-1-1 or grow the pool"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message %q lacks %q", msg, s)
		}
	}
}

func TestNotEnoughEvenRemovingAll(t *testing.T) {
	rm := []Removable{{"Base-1-0", 100 * MiB, 0}, {"Base-1-1", 0, 0}}
	err := Check(pool10G(99, 10), boot, plan, rm)
	var se *ShortageError
	if !errors.As(err, &se) || len(se.Shortages) != 1 {
		t.Fatalf("got %v", err)
	}
	s := se.Shortages[0]
	if s.Enough || !reflect.DeepEqual(s.Remove, []string{"Base-1-0"}) {
		t.Fatalf("got %+v", s)
	}
	if !strings.Contains(err.Error(), "removing Base-1-0 is not enough; grow the pool") {
		t.Fatalf("message: %v", err)
	}
}

func TestMaxPercent(t *testing.T) {
	p := pool10G(80, 10)
	if err := Check(p, boot, plan, nil); err != nil {
		t.Fatalf("80%% used, 2 GiB free: %v", err)
	}
	p.MaxPercent = 90 // only 1 GiB may be used
	if err := Check(p, boot, plan, nil); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("with a 90%% ceiling: got %v", err)
	}
}

func TestMetadataAndBootShort(t *testing.T) {
	p := pool10G(10, 99.5) // 64 MiB × 0.5% = 327 KiB of metadata free
	b := Boot{Free: 50 * MiB, Needed: 80 * MiB}
	rm := []Removable{{"Base-1-0+1", 0, 40 * MiB}}
	err := Check(p, b, plan, rm)
	var se *ShortageError
	if !errors.As(err, &se) || len(se.Shortages) != 2 {
		t.Fatalf("got %v", err)
	}
	meta, bt := se.Shortages[0], se.Shortages[1]
	chunks := (1500*MiB)/(64*KiB) + (20*MiB)/(64*KiB)
	if meta.What != "pool metadata" || meta.Need != chunks*MetadataPerChunk+2*MetadataPerDevice || !strings.Contains(meta.Hint, "--poolmetadatasize") {
		t.Fatalf("metadata: %+v", meta)
	}
	if bt.What != "/boot" || bt.Need != 80*MiB || bt.Free != 50*MiB || !bt.Enough || !reflect.DeepEqual(bt.Remove, []string{"Base-1-0+1"}) {
		t.Fatalf("boot: %+v", bt)
	}
	// With nothing to remove, the message still says what to do.
	err = Check(pool10G(0, 0), b, plan, nil)
	if err == nil || !strings.HasSuffix(err.Error(), "; /boot: need 80.0 MiB, free 50.0 MiB, free space on /boot (a layer removed with 'imgbase layer --remove' takes its kernel files along)") {
		t.Fatalf("boot short, nothing removable: %v", err)
	}
}

func TestBadChunk(t *testing.T) {
	p := pool10G(0, 0)
	p.Chunk = 0
	if err := Check(p, boot, plan, nil); err == nil {
		t.Fatal("chunk size 0 accepted")
	}
}

func TestAutoextendCounts(t *testing.T) {
	// 90% of 10 GiB used: 1 GiB free, 1520 MiB needed; autoextend may
	// take the rest from the volume group.
	p := pool10G(90, 10)
	p.Grow = 600 * MiB
	if err := Check(p, boot, plan, nil); err != nil {
		t.Fatalf("with 600 MiB for autoextend: %v", err)
	}
	p.Grow = 100 * MiB
	err := Check(p, boot, plan, nil)
	var se *ShortageError
	if !errors.As(err, &se) || len(se.Shortages) != 1 || se.Shortages[0].Free != 1*GiB+100*MiB+(int64(float64(10*GiB)*10/100)-1*GiB) {
		t.Fatalf("with 100 MiB for autoextend: got %v", err)
	}
	// Data and metadata draw on the same free extents.
	p = pool10G(90, 99.9)
	p.Grow = 496*MiB + 64*KiB
	if err := Check(p, boot, plan, nil); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("growth shared by data and metadata counted twice: %v", err)
	}
}

func TestCheckMetadata(t *testing.T) {
	if err := CheckMetadata(pool10G(99, 89.9)); err != nil {
		t.Fatal(err)
	}
	err := CheckMetadata(pool10G(10, 90))
	if !errors.Is(err, ErrMetadataFull) || !strings.Contains(err.Error(), "lvextend --poolmetadatasize +64M HostVG/pool00") {
		t.Fatalf("got %v", err)
	}
}
