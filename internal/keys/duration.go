package keys

import (
	"strconv"
	"strings"
	"time"
)

// maxDurationSeconds bounds a Duration to about 200 years (counting a year as 366 days and a
// month as 31), so adding one to a time can never overflow.
const maxDurationSeconds = 200 * 366 * 86400

// Duration is an ISO 8601 duration as rotation policies use it (P90D, P1Y2M, PT48H,
// P1Y10DT2H): calendar parts (years, months, weeks, days) and clock parts (hours, minutes,
// seconds), each a non-negative integer. Calendar parts are applied with time.AddDate, so
// P1M after January 31 is March 2 or 3, as in Go.
type Duration struct {
	Years, Months, Weeks, Days int
	Hours, Minutes, Seconds    int
}

// ParseDuration parses an ISO 8601 duration: "P", then any of nY nM nW nD in that order,
// then optionally "T" and any of nH nM nS in that order, with at least one part and at
// least one part after T. Numbers are unsigned decimal integers (no fractions, signs or
// spaces). Zero and durations over about 200 years are refused. Errors wrap
// ErrBadParameter.
func ParseDuration(s string) (Duration, error) {
	var d Duration
	if len(s) > 64 {
		return d, badParam("duration is longer than 64 characters")
	}
	if !strings.HasPrefix(s, "P") {
		return d, badParam("duration %q does not start with P (ISO 8601, e.g. P90D)", s)
	}
	rest := s[1:]
	datePart, timePart, hasT := strings.Cut(rest, "T")
	if hasT && timePart == "" {
		return d, badParam("duration %q has no part after T", s)
	}
	if datePart == "" && !hasT {
		return d, badParam("duration %q has no parts", s)
	}
	if err := parseParts(s, datePart, "YMWD", []*int{&d.Years, &d.Months, &d.Weeks, &d.Days}); err != nil {
		return Duration{}, err
	}
	if err := parseParts(s, timePart, "HMS", []*int{&d.Hours, &d.Minutes, &d.Seconds}); err != nil {
		return Duration{}, err
	}
	secs := d.approxSeconds()
	if secs == 0 {
		return Duration{}, badParam("duration %q is zero", s)
	}
	if secs > maxDurationSeconds {
		return Duration{}, badParam("duration %q is longer than 200 years", s)
	}
	return d, nil
}

// parseParts parses number+designator pairs whose designators appear in order in units.
func parseParts(s, part, units string, into []*int) error {
	next := 0 // index in units of the next designator allowed
	for part != "" {
		i := 0
		for i < len(part) && part[i] >= '0' && part[i] <= '9' {
			i++
		}
		if i == 0 || i == len(part) {
			return badParam("duration %q is not ISO 8601 (expected a number followed by one of %s)", s, units)
		}
		if i > 9 {
			return badParam("duration %q has a number with more than 9 digits", s)
		}
		u := strings.IndexByte(units[next:], part[i])
		if u < 0 {
			return badParam("duration %q has a misplaced or unknown designator %q", s, part[i])
		}
		n, err := strconv.Atoi(part[:i])
		if err != nil {
			return badParam("duration %q has an invalid number", s)
		}
		*into[next+u] = n
		next += u + 1
		part = part[i+1:]
	}
	return nil
}

// approxSeconds is an upper bound of the duration in seconds.
func (d Duration) approxSeconds() int64 {
	days := int64(d.Years)*366 + int64(d.Months)*31 + int64(d.Weeks)*7 + int64(d.Days)
	return days*86400 + int64(d.Hours)*3600 + int64(d.Minutes)*60 + int64(d.Seconds)
}

// clock is the clock part as a time.Duration.
func (d Duration) clock() time.Duration {
	return time.Duration(d.Hours)*time.Hour + time.Duration(d.Minutes)*time.Minute + time.Duration(d.Seconds)*time.Second
}

// From returns t + d.
func (d Duration) From(t time.Time) time.Time {
	return t.AddDate(d.Years, d.Months, d.Weeks*7+d.Days).Add(d.clock())
}

// Before returns t - d.
func (d Duration) Before(t time.Time) time.Time {
	return t.AddDate(-d.Years, -d.Months, -(d.Weeks*7 + d.Days)).Add(-d.clock())
}

// String returns the canonical ISO 8601 form, without zero parts ("P0D" for zero).
func (d Duration) String() string {
	var b strings.Builder
	b.WriteByte('P')
	put := func(n int, u byte) {
		if n != 0 {
			b.WriteString(strconv.Itoa(n))
			b.WriteByte(u)
		}
	}
	put(d.Years, 'Y')
	put(d.Months, 'M')
	put(d.Weeks, 'W')
	put(d.Days, 'D')
	if d.Hours != 0 || d.Minutes != 0 || d.Seconds != 0 {
		b.WriteByte('T')
		put(d.Hours, 'H')
		put(d.Minutes, 'M')
		put(d.Seconds, 'S')
	}
	if b.Len() == 1 {
		return "P0D"
	}
	return b.String()
}
