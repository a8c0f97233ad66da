package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// Stopping the server lets a call in flight finish with its own
// (uncancelled) context, and wakes handlers that wait on Draining at once.
func TestShutdownFinishesCallsAndWakesWaiters(t *testing.T) {
	slowStarted, pollStarted := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(slowStarted)
		time.Sleep(300 * time.Millisecond) // a transaction in flight
		if err := r.Context().Err(); err != nil {
			http.Error(w, "context ended: "+err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "committed")
	})
	mux.HandleFunc("/poll", func(w http.ResponseWriter, r *http.Request) {
		close(pollStarted)
		select {
		case <-api.Draining(r.Context()):
			io.WriteString(w, "drained")
		case <-time.After(30 * time.Second):
			io.WriteString(w, "timed out")
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.ListenAndServe(ctx, ln, mux, 10*time.Second, "", "") }()

	get := func(path string, out chan<- string) {
		res, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		out <- string(b)
	}
	slow, poll := make(chan string, 1), make(chan string, 1)
	go get("/slow", slow)
	go get("/poll", poll)
	<-slowStarted
	<-pollStarted
	began := time.Now()
	cancel()
	if got := <-poll; got != "drained" {
		t.Errorf("long poll answered %q, want drained", got)
	}
	if got := <-slow; got != "committed" {
		t.Errorf("call in flight answered %q, want committed", got)
	}
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe: %v", err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("shutdown took %s, want the time of the call in flight", d)
	}
	if api.Draining(context.Background()) != nil {
		t.Error("Draining outside a server is not nil")
	}
}
