package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/storage"
)

// versionCache keeps decoded version records by storage path, with the stored bytes each
// was decoded from. A read still fetches (and the barrier still opens) the record; only when
// its bytes equal the cached bytes is the JSON decoding skipped, so an update, a rotation or
// another node's write is never missed. Decoding a version record (base64 of the handle and
// the public JWK) was ~15% of a key read's server CPU (BENCHMARKS.md).
//
// Callers get a deep copy (cloneVersion), so nothing they change reaches the cache. The
// cache holds what the loaded-key cache already holds (the handle), lives as long as the
// Service, which the server drops on seal, and starts over when full.
type versionCache struct {
	mu  sync.Mutex
	m   map[string]cachedVersion
	max int
}

type cachedVersion struct {
	raw []byte
	rec *versionRecord
}

// readVersionCached is readVersion through s.versions.
func (s *Service) readVersionCached(ctx context.Context, sc scope, lc string, meta *keyRecord, version string) (*versionRecord, error) {
	if version == "" {
		version = meta.Latest
	}
	path := sc.versionPath(lc, version)
	b, err := s.store.Get(ctx, path)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound(meta.Name, version)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	c := &s.versions
	c.mu.Lock()
	hit, ok := c.m[path]
	c.mu.Unlock()
	if ok && bytes.Equal(hit.raw, b) {
		return cloneVersion(hit.rec), nil
	}
	var ver versionRecord
	if err := json.Unmarshal(b, &ver); err != nil {
		return nil, fmt.Errorf("decode %s: record is damaged", path)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]cachedVersion)
	}
	c.m[path] = cachedVersion{raw: b, rec: cloneVersion(&ver)}
	c.mu.Unlock()
	return &ver, nil
}

// cloneVersion copies v and everything it points to.
func cloneVersion(v *versionRecord) *versionRecord {
	c := *v
	c.Handle = slices.Clone(v.Handle)
	c.KeyOps = slices.Clone(v.KeyOps)
	c.NotBefore = cloneI64(v.NotBefore)
	c.Expires = cloneI64(v.Expires)
	c.Tags = maps.Clone(v.Tags)
	if v.Public != nil {
		j := cloneJWK((*provider.JWK)(v.Public))
		c.Public = (*storedJWK)(j)
	}
	if v.ReleasePolicy != nil {
		p := *v.ReleasePolicy
		p.Data = slices.Clone(p.Data)
		c.ReleasePolicy = &p
	}
	return &c
}

// cloneJWK copies every member of a JWK.
func cloneJWK(j *provider.JWK) *provider.JWK {
	c := *j
	c.KeyOps = slices.Clone(j.KeyOps)
	for _, f := range []*provider.B64{&c.N, &c.E, &c.D, &c.DP, &c.DQ, &c.QI, &c.P, &c.Q, &c.K, &c.T, &c.X, &c.Y} {
		*f = slices.Clone(*f)
	}
	return &c
}
