package server

import (
	"net/http"
	"sync"
	"time"
)

// warmIdle is how long a warm goroutine waits for another request before it exits (unless
// the server's warmKeep says otherwise): after a burst, or an HTTP/2 flood that keeps
// MaxConcurrentStreams handlers per connection busy, the goroutines it started stay this long.
const warmIdle = 10 * time.Second

// warmStacks runs each request's handler on a long-lived goroutine whose stack has already
// grown, and waits for it. The HTTP/2 server starts a new goroutine, with a small stack, for
// every request; a data-plane request (routing, token cache, RBAC, JSON, storage, audit)
// goes much deeper than that, so each request paid for several stack copies: 12% of the
// server's CPU in a profile of secret gets at concurrency 32 (runtime.newstack, BENCHMARKS.md).
//
// There is no limit and no queue: a request that finds no idle goroutine starts a new one,
// which then stays for its idle time, so the goroutines follow the peak concurrency. A panic in the
// handler is re-raised on the request's own goroutine, where net/http handles it as before.
func warmStacks(next http.Handler, idle time.Duration) http.Handler {
	p := &warmPool{work: make(chan *warmTask), idle: idle}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor < 2 {
			// HTTP/1.1 serves every request of a connection on the connection's own
			// long-lived goroutine, whose stack stays grown: a hand-off would only add a
			// goroutine switch.
			next.ServeHTTP(w, r)
			return
		}
		t := taskPool.Get().(*warmTask)
		t.next, t.w, t.r = next, w, r
		select {
		case p.work <- t:
		default:
			go p.worker(t)
		}
		<-t.done
		panicked, v := t.panicked, t.panicValue
		*t = warmTask{done: t.done}
		taskPool.Put(t)
		if panicked {
			panic(v)
		}
	})
}

type warmPool struct {
	work chan *warmTask // unbuffered: a send succeeds only when a worker is idle
	idle time.Duration  // how long an idle worker waits before it exits
}

type warmTask struct {
	next       http.Handler
	w          http.ResponseWriter
	r          *http.Request
	done       chan struct{}
	panicked   bool
	panicValue any
}

var taskPool = sync.Pool{New: func() any { return &warmTask{done: make(chan struct{}, 1)} }}

func (p *warmPool) worker(t *warmTask) {
	t.run()
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for {
		select {
		case t := <-p.work:
			t.run()
			idle.Reset(p.idle)
		case <-idle.C:
			return
		}
	}
}

func (t *warmTask) run() {
	defer func() {
		if v := recover(); v != nil {
			t.panicked, t.panicValue = true, v
		}
		t.done <- struct{}{}
	}()
	t.next.ServeHTTP(t.w, t.r)
}
