package config

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Duration is a time.Duration written as "90s" or "1h30m" in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration string, with days ("14d") and weeks
// ("2w") as well.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// longUnits are the units ParseDuration adds to Go's.
var longUnits = regexp.MustCompile(`([0-9]+(?:\.[0-9]*)?)([dw])`)

// ParseDuration parses a Go duration ("90m", "1h30m") that may also count
// days ("d", 24h) and weeks ("w", 7d): "14d", "1w2d12h".
func ParseDuration(s string) (time.Duration, error) {
	var bad error
	g := longUnits.ReplaceAllStringFunc(s, func(m string) string {
		sub := longUnits.FindStringSubmatch(m)
		n, err := strconv.ParseFloat(sub[1], 64)
		if err != nil {
			bad = err
		}
		h := 24.0
		if sub[2] == "w" {
			h = 7 * 24
		}
		return strconv.FormatFloat(n*h, 'f', -1, 64) + "h"
	})
	v, err := time.ParseDuration(g)
	if bad != nil || err != nil {
		return 0, fmt.Errorf("parsing duration %q: not a duration such as 90m, 12h or 14d", s)
	}
	return v, nil
}

// Size is a number of bytes written as "500GiB", "20 GB" or "1073741824".
type Size int64

// UnmarshalText parses a size.
func (s *Size) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = 0
		return nil
	}
	v, err := humanize.ParseBytes(string(b))
	if err != nil || v > math.MaxInt64 {
		return fmt.Errorf("parsing size %q: not a size such as 500GiB or 20GB", b)
	}
	*s = Size(v)
	return nil
}

// MarshalText writes the size in binary units.
func (s Size) MarshalText() ([]byte, error) {
	if s == 0 {
		return []byte{}, nil
	}
	return []byte(strings.ReplaceAll(humanize.IBytes(uint64(s)), " ", "")), nil
}

// Threshold is an amount of free space: bytes ("20GiB") or a share of the
// filesystem ("10%"). The zero value is no threshold.
type Threshold struct {
	Bytes   int64
	Percent float64
}

// UnmarshalText parses "20GiB", "10%" or "" (none).
func (t *Threshold) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	*t = Threshold{}
	if s == "" {
		return nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || v > 100 {
			return fmt.Errorf("parsing %q: not a percentage between 0%% and 100%%", s)
		}
		t.Percent = v
		return nil
	}
	var sz Size
	if err := sz.UnmarshalText([]byte(s)); err != nil {
		return err
	}
	t.Bytes = int64(sz)
	return nil
}

// MarshalText writes the threshold as it is parsed.
func (t Threshold) MarshalText() ([]byte, error) {
	if t.Percent > 0 {
		return []byte(strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"), nil
	}
	return Size(t.Bytes).MarshalText()
}

// Of returns the threshold in bytes for a filesystem of total bytes.
func (t Threshold) Of(total int64) int64 {
	if t.Percent > 0 {
		return int64(float64(total) * t.Percent / 100)
	}
	return t.Bytes
}

// IsZero reports whether there is no threshold.
func (t Threshold) IsZero() bool { return t.Bytes == 0 && t.Percent == 0 }

// MarshalText writes the duration as Go writes it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Secret is a credential. It prints as a fixed mask everywhere (fmt, slog,
// JSON) so that it cannot reach a log by accident; Reveal returns the value.
type Secret string

const mask = "[redacted]"

// Reveal returns the secret's value, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// String masks the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// Format masks the value for every fmt verb. Without it a verb that does
// not apply to strings (%d, %t, %f) would print the raw value inside its
// "%!d(config.Secret=…)" error text.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(s.String()))
		return
	}
	io.WriteString(f, s.String())
}

// GoString masks the value for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue masks the value in slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText masks the value in JSON and TOML.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
