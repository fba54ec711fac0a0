package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Remote fetch limits (SECURITY-NOTES A15).
const (
	// RemoteTimeout bounds one refresh (discovery document and JWKS together).
	RemoteTimeout = 5 * time.Second
	// MaxRemoteBody is the largest discovery document or JWKS a RemoteKeySet reads, in bytes.
	MaxRemoteBody = MaxJWKSLen
)

// RemoteOptions tune a RemoteKeySet. The zero value gives the defaults.
type RemoteOptions struct {
	// MinRefresh is the least time between two fetches triggered by Lookup (an unknown kid or
	// an old set), default 1 minute: unknown kids cannot make Coffer hammer the issuer.
	MinRefresh time.Duration
	// MaxAge is how long a fetched set is used before Lookup refreshes it, default 1 hour, so
	// keys the issuer withdraws stop being accepted.
	MaxAge time.Duration
	// MaxStale is how long the last good set is still used while refreshes fail, default 24
	// hours; after that Lookup finds nothing until a fetch succeeds.
	MaxStale time.Duration
	// Now is the clock, default time.Now.
	Now func() time.Time
}

// RemoteKeySet is the key set of an external OpenID Connect issuer, fetched from the
// jwks_uri of its discovery document (<issuer>/.well-known/openid-configuration) and cached.
// The discovery document's issuer must equal the configured issuer exactly, and its jwks_uri
// must be https on the issuer's host. Both fetches use HTTPS, no redirects, RemoteTimeout and
// MaxRemoteBody; the JWKS is parsed by ParseJWKS. A RemoteKeySet is safe for concurrent use:
// concurrent Lookups that need a refresh share one fetch.
type RemoteKeySet struct {
	issuer string
	client *http.Client
	opts   RemoteOptions

	mu        sync.Mutex
	keys      *StaticKeySet // last good set; nil before the first successful fetch
	fetchedAt time.Time     // when keys was fetched
	attempted time.Time     // when the last fetch started
	inflight  chan struct{} // closed when the running fetch ends; nil if none runs
	lastErr   error         // result of the last fetch
}

var _ KeySet = (*RemoteKeySet)(nil)

// NewRemoteKeySet returns the key set of issuer, fetched with client (nil means a client
// with http.DefaultTransport). The client is copied: redirects are refused, cookies are not
// kept and its timeout is capped at RemoteTimeout. Nothing is fetched until the first Lookup
// or Refresh; an issuer that is not an https URL makes every fetch fail.
func NewRemoteKeySet(issuer string, client *http.Client, opts RemoteOptions) *RemoteKeySet {
	c := http.Client{}
	if client != nil {
		c = *client
	}
	c.Jar = nil
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.Timeout <= 0 || c.Timeout > RemoteTimeout {
		c.Timeout = RemoteTimeout
	}
	if opts.MinRefresh <= 0 {
		opts.MinRefresh = time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Hour
	}
	if opts.MaxStale <= 0 {
		opts.MaxStale = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RemoteKeySet{issuer: issuer, client: &c, opts: opts}
}

// Lookup returns the issuer's key with id kid. If kid is unknown, or the cached set is older
// than MaxAge, it first refreshes the set, at most once per MinRefresh (callers arriving
// during a fetch wait for it). A failed refresh keeps the last good set until MaxStale.
func (r *RemoteKeySet) Lookup(kid string) (Key, bool) {
	now := r.opts.Now()
	r.mu.Lock()
	if r.keys != nil && now.Sub(r.fetchedAt) < r.opts.MaxAge {
		if k, ok := r.keys.Lookup(kid); ok {
			r.mu.Unlock()
			return k, true
		}
	}
	wait, lead := r.startLocked(now, false)
	r.mu.Unlock()
	if lead {
		r.fetchAndStore(context.Background(), wait)
	} else if wait != nil {
		<-wait
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil || r.opts.Now().Sub(r.fetchedAt) > r.opts.MaxStale {
		return Key{}, false
	}
	return r.keys.Lookup(kid)
}

// Refresh fetches the key set now, whatever MinRefresh says (joining a fetch already
// running), and returns the fetch's error. Call it at start-up to report a misconfigured
// issuer early.
func (r *RemoteKeySet) Refresh(ctx context.Context) error {
	r.mu.Lock()
	wait, lead := r.startLocked(r.opts.Now(), true)
	r.mu.Unlock()
	if lead {
		r.fetchAndStore(ctx, wait)
	} else {
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// startLocked decides whether a fetch is needed. It returns the channel of the running
// fetch to wait on (lead false), a new channel the caller must fetch for and close (lead
// true), or nil if the rate limit says no.
func (r *RemoteKeySet) startLocked(now time.Time, force bool) (wait chan struct{}, lead bool) {
	if r.inflight != nil {
		return r.inflight, false
	}
	if !force && !r.attempted.IsZero() && now.Sub(r.attempted) < r.opts.MinRefresh {
		return nil, false
	}
	r.attempted = now
	r.inflight = make(chan struct{})
	return r.inflight, true
}

// fetchAndStore runs one fetch, records its result and releases the waiters on done.
func (r *RemoteKeySet) fetchAndStore(ctx context.Context, done chan struct{}) {
	var keys *StaticKeySet
	err := errors.New("remote keys: fetch did not complete")
	defer func() { // even if fetch panics, so that waiters are never stuck
		r.mu.Lock()
		r.lastErr = err
		if err == nil {
			r.keys, r.fetchedAt = keys, r.opts.Now()
		}
		r.inflight = nil
		r.mu.Unlock()
		close(done)
	}()
	keys, err = r.fetch(ctx)
}

// fetch reads the discovery document, checks it, then reads and parses the JWKS.
func (r *RemoteKeySet) fetch(ctx context.Context) (*StaticKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, RemoteTimeout)
	defer cancel()
	iss, err := url.Parse(r.issuer)
	if err != nil || iss.Scheme != "https" || iss.Host == "" || iss.User != nil || iss.RawQuery != "" || iss.Fragment != "" {
		return nil, fmt.Errorf("remote keys: issuer %q is not an https URL", r.issuer)
	}
	body, err := r.get(ctx, strings.TrimSuffix(r.issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return nil, err
	}
	var disco struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &disco); err != nil {
		return nil, fmt.Errorf("remote keys: discovery document: %w", err)
	}
	if disco.Issuer != r.issuer {
		return nil, fmt.Errorf("remote keys: discovery document names issuer %q, want %q", disco.Issuer, r.issuer)
	}
	ju, err := url.Parse(disco.JWKSURI)
	if err != nil || ju.Scheme != "https" || ju.Host != iss.Host || ju.User != nil {
		return nil, fmt.Errorf("remote keys: jwks_uri %q is not https on the issuer's host %q", disco.JWKSURI, iss.Host)
	}
	if body, err = r.get(ctx, ju.String()); err != nil {
		return nil, err
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("remote keys: %w", err)
	}
	return keys, nil
}

// get fetches u and returns a 200 response's body of at most MaxRemoteBody bytes.
func (r *RemoteKeySet) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("remote keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("remote keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("remote keys: GET %s: status %d (redirects are not followed)", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxRemoteBody+1))
	if err != nil {
		return nil, fmt.Errorf("remote keys: GET %s: %w", u, err)
	}
	if len(b) > MaxRemoteBody {
		return nil, errors.New("remote keys: GET " + u + ": body larger than the limit")
	}
	return b, nil
}
