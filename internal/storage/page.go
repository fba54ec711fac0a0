package storage

import (
	"context"
	"strings"
)

// PageSuffixes reads one page of the keys under prefix for a listing API and returns their
// suffixes (the part after prefix) that valid accepts. after is the suffix the previous page
// ended with ("" for the first page; the caller checks it is well-formed). next is the last
// suffix of a page that has a successor, or "" on the last page.
func PageSuffixes(ctx context.Context, r Reader, prefix string, limit int, after string, valid func(string) bool) (suffixes []string, next string, err error) {
	lo := ListOptions{Limit: limit}
	if after != "" {
		lo.After = prefix + after
	}
	page, err := r.List(ctx, prefix, lo)
	if err != nil {
		return nil, "", err
	}
	out := make([]string, 0, len(page.Keys))
	for _, k := range page.Keys {
		if suffix := strings.TrimPrefix(k, prefix); valid(suffix) {
			out = append(out, suffix)
		}
	}
	if page.Next != "" && len(page.Keys) > 0 {
		next = strings.TrimPrefix(page.Keys[len(page.Keys)-1], prefix)
	}
	return out, next, nil
}
