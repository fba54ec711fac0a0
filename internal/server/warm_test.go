package server

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestWarmStacksConcurrency: the warm goroutines have no limit, so requests that all wait
// for each other are all served (a bounded pool would deadlock here).
func TestWarmStacksConcurrency(t *testing.T) {
	const n = 64
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	h := warmStacks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
		w.Header().Set("X-Path", r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	}), warmIdle)
	var done sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, h2Request("/x"))
			codes[i] = w.Code
			if got := w.Header().Get("X-Path"); got != "/x" {
				t.Errorf("X-Path = %q; want /x", got)
			}
		}()
	}
	started.Wait()
	close(release)
	done.Wait()
	for i, c := range codes {
		if c != http.StatusTeapot {
			t.Errorf("request %d: status %d; want %d", i, c, http.StatusTeapot)
		}
	}
}

// TestWarmStacksPanic: a handler's panic reaches the request's own goroutine (where net/http
// recovers it and logs or aborts), and the pool keeps serving.
func TestWarmStacksPanic(t *testing.T) {
	h := warmStacks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(http.StatusNoContent)
	}), warmIdle)
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v; want http.ErrAbortHandler", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), h2Request("/boom"))
	}()
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, h2Request("/ok"))
		if w.Code != http.StatusNoContent {
			t.Errorf("after a panic: status %d; want 204", w.Code)
		}
	}
}

// h2Request is a GET of path as HTTP/2, the protocol the warm goroutines serve.
func h2Request(path string) *http.Request {
	r := httptest.NewRequest("GET", path, nil)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	return r
}
