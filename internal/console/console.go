// Package console owns the web console of `flowlog serve`: a login with
// the server's access keys, and pages to create, list and delete flow
// logs, browse the inventory the agents registered, explore a flow log's
// records (filtered with the expression language of `flowlog analyze`,
// paged, downloadable as CSV) and see them as charts and TCP
// conversations.
//
// The console is a front end like the API: every action runs as the
// logged-in principal through the server's Authorizer (api.NewCall), and
// flow logs are created by the same code, with the same validation and
// error messages, as CreateFlowLogs over the EC2 Query API. Every number
// the pages show is computed by internal/analyze; the browser only draws.
// The assets (HTML, one CSS file, plain ES modules) are embedded in the
// binary and load nothing from elsewhere.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/flowlog/flowlog/internal/analyze"
	"github.com/flowlog/flowlog/internal/api"
)

//go:embed web
var webFS embed.FS

// Options are what a Handler is made of.
type Options struct {
	// Credentials check the access keys people log in with.
	Credentials api.Credentials
	// Authorizer decides every action as it decides API calls; nil
	// means api.AllowRoot.
	Authorizer api.Authorizer
	// Audit, when set, sees every action.
	Audit    api.Auditor
	FlowLogs FlowLogs
	// Logs reads CloudWatch Logs destinations; nil: records of flow logs
	// that deliver there cannot be shown.
	Logs LogEvents
	// Firehose is this server's Firehose API, whose delivery streams'
	// objects hold the records of kinesis-data-firehose flow logs; nil:
	// those cannot be shown.
	Firehose DeliveryStreams
	// S3 says how records of s3 destinations are read; nil: with the
	// usual AWS configuration (environment, shared files).
	S3 *analyze.S3Config
	// AccountID and Region name resources in ARNs.
	AccountID, Region string
	// SessionTTL is how long a login lasts; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// MaxEvents bounds how many CloudWatch Logs events or Kafka messages
	// one page reads; 0 means DefaultMaxEvents.
	MaxEvents int
	Logger    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultSessionTTL = 12 * time.Hour
	DefaultMaxEvents  = 200_000
)

// Handler is the console's http.Handler.
type Handler struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	sessions *sessions
	throttle *loginThrottle
	static   http.Handler

	s3once sync.Once
	s3     *analyze.S3
	s3err  error

	// pageKey signs the next-page tokens of kafka flow logs' records
	// (kafkaToken): random per process, so a restart voids them.
	pageKey []byte
}

// New checks opts and returns the console.
func New(opts Options) (*Handler, error) {
	if opts.Credentials == nil {
		return nil, errors.New("new console: no credentials")
	}
	if opts.FlowLogs == nil {
		return nil, errors.New("new console: no flow-log service")
	}
	if opts.Authorizer == nil {
		opts.Authorizer = api.AllowRoot{}
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AccountID == "" {
		opts.AccountID = api.DefaultAccountID
	}
	if opts.Region == "" {
		opts.Region = api.DefaultRegion
	}
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, err
	}
	h := &Handler{opts: opts, log: opts.Logger, mux: http.NewServeMux(), sessions: newSessions(opts.SessionTTL, opts.Now),
		throttle: newLoginThrottle(opts.Now), pageKey: []byte(newID(32)),
		static: http.StripPrefix("/static/", http.FileServerFS(sub))}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /login", h.loginPage)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.withSession(h.logout))
	m.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.static.ServeHTTP(w, r)
	})
	m.HandleFunc("GET /{$}", h.withPage(h.index))
	m.HandleFunc("GET /console/api/session", h.withSession(h.session))
	m.HandleFunc("GET /console/api/fields", h.withSession(h.fields))
	m.HandleFunc("GET /console/api/format", h.withSession(h.formatPreview))
	m.HandleFunc("GET /console/api/flowlogs", h.withSession(h.listFlowLogs))
	m.HandleFunc("POST /console/api/flowlogs", h.withSession(h.createFlowLogs))
	m.HandleFunc("DELETE /console/api/flowlogs/{id}", h.withSession(h.deleteFlowLog))
	m.HandleFunc("GET /console/api/inventory", h.withSession(h.inventory))
	m.HandleFunc("GET /console/api/flowlogs/{id}/records", h.withSession(h.withRecords(h.records)))
	m.HandleFunc("GET /console/api/flowlogs/{id}/records.csv", h.withSession(h.withRecords(h.recordsCSV)))
	m.HandleFunc("GET /console/api/flowlogs/{id}/charts", h.withSession(h.withRecords(h.charts)))
	m.HandleFunc("GET /console/api/flowlogs/{id}/connections", h.withSession(h.withRecords(h.connections)))
	m.HandleFunc("GET /console/api/flowlogs/{id}/conversation", h.withSession(h.conversation))
	m.HandleFunc("/console/api/", h.withSession(func(w http.ResponseWriter, r *http.Request, _ *session) {
		writeError(w, http.StatusNotFound, "NotFound", "no console endpoint "+r.Method+" "+r.URL.Path)
	}))
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Everything the pages use comes from this server; nothing is inline.
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// index serves the application's page.
func (h *Handler) index(w http.ResponseWriter, r *http.Request, _ *session) {
	data, err := webFS.ReadFile("web/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// newCall is an action of the session's principal, under the server's
// authorizer, as the API would make it.
func (h *Handler) newCall(r *http.Request, s *session, service, action string) *api.Call {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().Unmap()
	}
	return api.NewCall(h.opts.Authorizer, s.principal, service, action, newID(16), ip, r.TLS != nil, h.opts.Now())
}

// authorize asks whether the call may do action on resources, and
// audits a refusal.
func (h *Handler) authorize(ctx context.Context, call *api.Call, action string, resources ...string) error {
	err := call.Authorize(ctx, action, resources...)
	if err != nil {
		h.audit(call, resources, err)
	}
	return err
}

func (h *Handler) audit(call *api.Call, resources []string, err error) {
	if h.opts.Audit == nil {
		return
	}
	if err != nil {
		h.opts.Audit.Audit(call, resources, api.AsError(err))
		return
	}
	h.opts.Audit.Audit(call, resources, nil)
}

// arn names a resource of this account and region.
func (h *Handler) arn(service, resource string) string {
	return "arn:aws:" + service + ":" + h.opts.Region + ":" + h.opts.AccountID + ":" + resource
}

// errorBody is how console endpoints report errors: the API's code and
// message, so people see what the CLI would print.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, struct {
		Error errorBody `json:"error"`
	}{errorBody{code, msg}})
}

// writeAPIError reports err as the API would: its code, message and
// status; an error that is not an *api.Error is logged, not shown.
func (h *Handler) writeAPIError(w http.ResponseWriter, err error) {
	e := api.AsError(err)
	if e.Status >= 500 {
		h.log.Error("console action failed", "err", err)
	}
	writeError(w, e.Status, e.Code, e.Message)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		buf = []byte(`{"error":{"code":"InternalError","message":"encode answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf)
}

// newID returns n random bytes in hex.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
