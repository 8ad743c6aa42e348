// Package lvm speaks lvm2's command line: one JSON `lvs` report decoded
// through typed structs, and the few mutating commands imgbase needs.
package lvm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The LVM tags oVirt Node uses, so that an existing Node host is read as it is.
const (
	TagVG     = "imgbased:vg"
	TagPool   = "imgbased:pool"
	TagInit   = "imgbased:init"
	TagBase   = "imgbased:base"
	TagLayer  = "imgbased:layer"
	TagVolume = "imgbased:volume"
	// TagPinned exempts a base from garbage collection.
	TagPinned = "imgbased:pinned"
)

// ReportFields are the columns asked of lvs; LV's json tags follow them.
var ReportFields = []string{
	"vg_name", "lv_name", "lv_path", "lv_attr", "lv_size", "lv_tags",
	"origin", "pool_lv", "data_percent", "metadata_percent",
	"lv_metadata_size", "chunk_size", "lv_kernel_major", "lv_kernel_minor",
	"vg_tags", "vg_size", "vg_free", "thin_id",
}

// LV is one row of the lvs report.
type LV struct {
	VG           string
	Name         string
	Path         string
	Attr         string
	Size         uint64
	Tags         []string
	Origin       string
	Pool         string
	DataPercent  float64
	MetaPercent  float64
	MetadataSize uint64
	ChunkSize    uint64
	Major, Minor int
	VGTags       []string
	VGSize       uint64
	VGFree       uint64
	// ThinID is a thin volume's device id in its pool (what thin_ls
	// calls DEV); -1 for other LVs.
	ThinID int64
}

// rawLV mirrors lvs' JSON: every value is a string.
type rawLV struct {
	VG           string `json:"vg_name"`
	Name         string `json:"lv_name"`
	Path         string `json:"lv_path"`
	Attr         string `json:"lv_attr"`
	Size         string `json:"lv_size"`
	Tags         string `json:"lv_tags"`
	Origin       string `json:"origin"`
	Pool         string `json:"pool_lv"`
	DataPercent  string `json:"data_percent"`
	MetaPercent  string `json:"metadata_percent"`
	MetadataSize string `json:"lv_metadata_size"`
	ChunkSize    string `json:"chunk_size"`
	Major        string `json:"lv_kernel_major"`
	Minor        string `json:"lv_kernel_minor"`
	VGTags       string `json:"vg_tags"`
	VGSize       string `json:"vg_size"`
	VGFree       string `json:"vg_free"`
	ThinID       string `json:"thin_id"`
}

type rawReport struct {
	Report []struct {
		LV []rawLV `json:"lv"`
	} `json:"report"`
}

// DecodeError is a report lvs printed that imgbase cannot read.
type DecodeError struct {
	Field, Value string
	Err          error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("cannot read lvs report: field %s=%q: %v", e.Field, e.Value, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Decode parses the output of `lvs --reportformat json --units b --nosuffix`
// with ReportFields.
func Decode(data []byte) ([]LV, error) {
	var raw rawReport
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("cannot read lvs report: %w", err)
	}
	var lvs []LV
	for _, rep := range raw.Report {
		for _, r := range rep.LV {
			lv, err := r.decode()
			if err != nil {
				return nil, err
			}
			lvs = append(lvs, lv)
		}
	}
	return lvs, nil
}

func (r rawLV) decode() (LV, error) {
	lv := LV{
		VG: r.VG, Name: r.Name, Path: r.Path, Attr: r.Attr,
		Tags: splitTags(r.Tags), Origin: r.Origin, Pool: r.Pool,
		VGTags: splitTags(r.VGTags),
	}
	if lv.Name == "" {
		return lv, &DecodeError{Field: "lv_name", Value: r.Name, Err: fmt.Errorf("empty")}
	}
	var err error
	num := func(field, v string, dst *uint64) {
		if err != nil || v == "" {
			return
		}
		var n uint64
		if n, err = strconv.ParseUint(v, 10, 64); err != nil {
			err = &DecodeError{Field: field, Value: v, Err: err}
			return
		}
		*dst = n
	}
	pct := func(field, v string, dst *float64) {
		if err != nil || v == "" {
			return
		}
		var f float64
		if f, err = strconv.ParseFloat(v, 64); err != nil || f < 0 || f > 100 {
			if err == nil {
				err = fmt.Errorf("out of range")
			}
			err = &DecodeError{Field: field, Value: v, Err: err}
			return
		}
		*dst = f
	}
	dev := func(field, v string, dst *int) {
		*dst = -1
		if err != nil || v == "" {
			return
		}
		var n int64
		if n, err = strconv.ParseInt(v, 10, 32); err != nil {
			err = &DecodeError{Field: field, Value: v, Err: err}
			return
		}
		*dst = int(n)
	}
	num("lv_size", r.Size, &lv.Size)
	num("lv_metadata_size", r.MetadataSize, &lv.MetadataSize)
	num("chunk_size", r.ChunkSize, &lv.ChunkSize)
	num("vg_size", r.VGSize, &lv.VGSize)
	num("vg_free", r.VGFree, &lv.VGFree)
	pct("data_percent", r.DataPercent, &lv.DataPercent)
	pct("metadata_percent", r.MetaPercent, &lv.MetaPercent)
	dev("lv_kernel_major", r.Major, &lv.Major)
	dev("lv_kernel_minor", r.Minor, &lv.Minor)
	lv.ThinID = -1
	if err == nil && r.ThinID != "" {
		var n uint64
		if n, err = strconv.ParseUint(r.ThinID, 10, 24); err != nil {
			err = &DecodeError{Field: "thin_id", Value: r.ThinID, Err: err}
		} else {
			lv.ThinID = int64(n)
		}
	}
	return lv, err
}

func splitTags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// HasTag reports whether the LV carries tag.
func (lv *LV) HasTag(tag string) bool { return contains(lv.Tags, tag) }

// VGHasTag reports whether the LV's volume group carries tag.
func (lv *LV) VGHasTag(tag string) bool { return contains(lv.VGTags, tag) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// attr returns lv_attr's character i, or 0 when the report has no such column.
func (lv *LV) attr(i int) byte {
	if i < len(lv.Attr) {
		return lv.Attr[i]
	}
	return 0
}

// IsThin reports whether the LV is a thin volume.
func (lv *LV) IsThin() bool { return lv.attr(0) == 'V' }

// IsThinPool reports whether the LV is a thin pool.
func (lv *LV) IsThinPool() bool { return lv.attr(0) == 't' }

// ReadOnly reports whether the LV's permission is read-only.
func (lv *LV) ReadOnly() bool { return lv.attr(1) == 'r' || lv.attr(1) == 'R' }

// Active reports whether the LV is active.
func (lv *LV) Active() bool { return lv.attr(4) == 'a' }

// SkipActivation reports whether the LV has the activation skip flag.
func (lv *LV) SkipActivation() bool { return lv.attr(9) == 'k' }

// FullName is VG/LV as lvm2's commands take it.
func (lv *LV) FullName() string { return lv.VG + "/" + lv.Name }

// DevPath is the LV's /dev path, derived when lvs left it empty (an
// inactive LV has none).
func (lv *LV) DevPath() string {
	if lv.Path != "" {
		return lv.Path
	}
	return "/dev/" + lv.VG + "/" + lv.Name
}

// DataUsed is the bytes of a thin pool or thin LV in use.
func (lv *LV) DataUsed() uint64 { return uint64(float64(lv.Size) * lv.DataPercent / 100) }

// DataFree is the bytes still free in a thin pool.
func (lv *LV) DataFree() uint64 { return lv.Size - lv.DataUsed() }
