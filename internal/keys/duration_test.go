package keys

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
		ok   bool
	}{
		{"P90D", Duration{Days: 90}, true},
		{"P1Y2M", Duration{Years: 1, Months: 2}, true},
		{"P3M", Duration{Months: 3}, true},
		{"PT48H", Duration{Hours: 48}, true},
		{"P1Y10D", Duration{Years: 1, Days: 10}, true},
		{"P2W", Duration{Weeks: 2}, true},
		{"P1Y2M3W4DT5H6M7S", Duration{1, 2, 3, 4, 5, 6, 7}, true},
		{"PT1M", Duration{Minutes: 1}, true},
		{"P1M", Duration{Months: 1}, true},
		{"PT0H1S", Duration{Seconds: 1}, true},
		{"P007D", Duration{Days: 7}, true},
		{"P200Y", Duration{Years: 200}, true},
		{"", Duration{}, false},
		{"P", Duration{}, false},
		{"PT", Duration{}, false},
		{"P1DT", Duration{}, false},
		{"90D", Duration{}, false},
		{"p90d", Duration{}, false},
		{"P90", Duration{}, false},
		{"PD", Duration{}, false},
		{"P-1D", Duration{}, false},
		{"-P1D", Duration{}, false},
		{"P+1D", Duration{}, false},
		{"P1.5D", Duration{}, false},
		{"P1,5D", Duration{}, false},
		{"P1D1D", Duration{}, false},
		{"P1D1Y", Duration{}, false},
		{"P1H", Duration{}, false},
		{"PT1D", Duration{}, false},
		{"P1S", Duration{}, false},
		{"P0D", Duration{}, false},
		{"PT0S", Duration{}, false},
		{"P201Y", Duration{}, false},
		{"P1234567890D", Duration{}, false},
		{"P 1D", Duration{}, false},
		{"P1D ", Duration{}, false},
		{"P1DT1H1M1S1S", Duration{}, false},
		{"P1W1Y", Duration{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Errorf("ParseDuration(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrBadParameter) {
				t.Errorf("ParseDuration(%q) = %+v, %v; want ErrBadParameter", tt.in, got, err)
			}
		})
	}
}

func TestDurationArithmetic(t *testing.T) {
	base := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in           string
		from, before time.Time
	}{
		{"P90D", base.AddDate(0, 0, 90), base.AddDate(0, 0, -90)},
		{"P1M", time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC), time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC)},
		{"P1Y2W", base.AddDate(1, 0, 14), base.AddDate(-1, 0, -14)},
		{"PT36H30M", base.Add(36*time.Hour + 30*time.Minute), base.Add(-36*time.Hour - 30*time.Minute)},
	} {
		d, err := ParseDuration(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.From(base); !got.Equal(tt.from) {
			t.Errorf("ParseDuration(%q).From(%v) = %v; want %v", tt.in, base, got, tt.from)
		}
		if got := d.Before(base); !got.Equal(tt.before) {
			t.Errorf("ParseDuration(%q).Before(%v) = %v; want %v", tt.in, base, got, tt.before)
		}
		if d.String() != tt.in {
			t.Errorf("ParseDuration(%q).String() = %q", tt.in, d.String())
		}
	}
	if s := (Duration{}).String(); s != "P0D" {
		t.Errorf("Duration{}.String() = %q; want P0D", s)
	}
}

// FuzzParseDuration checks that the rotation-policy duration parser never panics, that what
// it accepts is positive and bounded, and that the canonical form parses to the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"P90D", "P1Y2M", "PT48H", "P1Y10D", "P1Y2M3W4DT5H6M7S", "P", "PT", "P-1D", "P999999999D", "P1DT", "P0D", "PT0S", "\x00", "P1\u00e9D"} {
		f.Add(s)
	}
	base := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !errors.Is(err, ErrBadParameter) {
				t.Fatalf("ParseDuration(%q) = %v; want ErrBadParameter", s, err)
			}
			return
		}
		if d.approxSeconds() <= 0 || d.approxSeconds() > maxDurationSeconds {
			t.Fatalf("ParseDuration(%q) = %+v: outside (0, 200 years]", s, d)
		}
		if !d.From(base).After(base) || !d.Before(base).Before(base) {
			t.Fatalf("ParseDuration(%q) = %+v does not move time forward and back", s, d)
		}
		again, err := ParseDuration(d.String())
		if err != nil || again != d {
			t.Fatalf("ParseDuration(%q).String() = %q reparses as %+v, %v", s, d.String(), again, err)
		}
	})
}
