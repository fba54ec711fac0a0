package api

import (
	"net/url"
	"slices"
	"testing"
)

var queryCases = []string{
	"", "api-version=7.6", "api-version=", "api-version", "a=1&api-version=7.6&b=2",
	"api-version=7.5&api-version=7.6", "api-version=2025%2D07%2D01", "api-version=7.6;x=1",
	"api-version=7+6", "&&api-version=7.6&&", "API-VERSION=7.6", "api-version==7.6", "maxresults=2",
}

// queryValues answers exactly what url.ParseQuery does for the one name.
func TestQueryValuesMatchesParseQuery(t *testing.T) {
	for _, raw := range queryCases {
		checkQueryValues(t, raw)
	}
}

func FuzzQueryValues(f *testing.F) {
	for _, raw := range queryCases {
		f.Add(raw)
	}
	f.Fuzz(checkQueryValues)
}

func checkQueryValues(t *testing.T, raw string) {
	q, _ := url.ParseQuery(raw)
	if got, want := queryValues(raw, "api-version"), q["api-version"]; !slices.Equal(got, want) {
		t.Errorf("queryValues(%q) = %q; url.ParseQuery says %q", raw, got, want)
	}
}
