package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultQueryLimit is how many records Query returns when Filter.Limit is zero.
const DefaultQueryLimit = 1000

// ErrTenantRequired is returned by Query for a filter with neither Tenant nor Platform.
var ErrTenantRequired = errors.New("audit: query needs a tenant (only platform operators may query all tenants)")

// Filter selects records for Query.
type Filter struct {
	// Tenant restricts the result to event records whose Event.Tenant is this tenant (the
	// owner of the vault addressed). Required unless Platform is set.
	Tenant string
	// Platform lets a platform operator see every tenant's records, and checkpoint and
	// recovery records; Tenant, if also set, still filters.
	Platform bool
	// Since, if set, keeps records with Time at or after it.
	Since time.Time
	// Until, if set, keeps records with Time before it.
	Until time.Time
	// Operation, if set, keeps records of this operation only.
	Operation string
	// Limit caps the number of records returned (DefaultQueryLimit if zero); the first
	// matches in log order are returned, so page with Since.
	Limit int
}

// Query returns the records of the log read from r that f selects, in log order. It does
// not verify the chain (run Verify for that); it skips a torn final line and fails on any
// other line that is not a record.
func Query(r io.Reader, f Filter) ([]Record, error) {
	if f.Tenant == "" && !f.Platform {
		return nil, ErrTenantRequired
	}
	if f.Limit < 0 {
		return nil, errors.New("audit: query limit must not be negative")
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultQueryLimit
	}
	var out []Record
	lr := newLineReader(r)
	for len(out) < limit {
		l := lr.next()
		if l == nil || l.nul {
			break // the end, or the writer's zero padding after the last record
		}
		var rec Record
		err := errors.New("line too long")
		if !l.long {
			err = json.Unmarshal(l.b, &rec)
		}
		if err != nil || !l.nl {
			if lr.peek() == nil && lr.failure() == nil {
				break // torn final line
			}
			if err == nil {
				err = errors.New("no newline")
			}
			return nil, fmt.Errorf("audit: query: line %d is not a record: %v", l.no, err)
		}
		if f.matches(&rec) {
			out = append(out, rec)
		}
	}
	if err := lr.failure(); err != nil {
		return nil, fmt.Errorf("audit: query: read log: %w", err)
	}
	return out, nil
}

// matches reports whether f selects rec.
func (f *Filter) matches(rec *Record) bool {
	if rec.Kind != KindEvent && !f.Platform {
		return false
	}
	if f.Tenant != "" && rec.Tenant != f.Tenant {
		return false
	}
	if f.Operation != "" && rec.Operation != f.Operation {
		return false
	}
	if !f.Since.IsZero() && rec.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !rec.Time.Before(f.Until) {
		return false
	}
	return true
}
