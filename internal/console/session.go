package console

import (
	"crypto/subtle"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// Cookie and field names.
const (
	sessionCookie = "flowlog_session"
	// loginCookie carries the login form's token (double submit), so
	// another site cannot log a browser in under its own keys.
	loginCookie = "flowlog_login"
	// CSRFHeader or the form field CSRFField must carry the session's
	// token on every request that changes something.
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// session is one login.
type session struct {
	id        string
	csrf      string
	principal api.Principal
	expires   time.Time
}

// sessions are the logins, in memory: a restart logs everyone out.
type sessions struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: map[string]*session{}}
}

func (ss *sessions) create(p api.Principal) *session {
	s := &session{id: newID(32), csrf: newID(32), principal: p, expires: ss.now().Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for id, o := range ss.m {
		if now.After(o.expires) {
			delete(ss.m, id)
		}
	}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s != nil && ss.now().After(s.expires) {
		delete(ss.m, id)
		return nil
	}
	return s
}

func (ss *sessions) delete(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// current returns the request's live session, or nil. The session's key
// must still be known to the credentials: a key deleted or deactivated
// since the login ends the session.
func (h *Handler) current(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	s := h.sessions.get(c.Value)
	if s == nil {
		return nil
	}
	if _, _, err := h.opts.Credentials.Lookup(r.Context(), s.principal.AccessKeyID, ""); err != nil {
		h.sessions.delete(s.id)
		return nil
	}
	return s
}

// withSession serves console API requests of a logged-in session (401
// otherwise) and refuses a request that changes something without the
// session's CSRF token (403).
func (h *Handler) withSession(fn func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := h.current(r)
		if s == nil {
			writeError(w, http.StatusUnauthorized, "NotLoggedIn", "log in to the console first")
			return
		}
		if !safeMethod(r.Method) && !h.csrfOK(r, s) {
			writeError(w, http.StatusForbidden, "InvalidCSRFToken", "the request does not carry this session's CSRF token: reload the page")
			return
		}
		fn(w, r, s)
	}
}

// withPage serves a page of a logged-in session and sends others to the
// login page.
func (h *Handler) withPage(fn func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := h.current(r)
		if s == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		fn(w, r, s)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func (h *Handler) csrfOK(r *http.Request, s *session) bool {
	tok := r.Header.Get(CSRFHeader)
	if tok == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		tok = r.PostFormValue(CSRFField)
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1
}

var loginTemplate = template.Must(template.ParseFS(webFS, "web/login.html"))

type loginData struct {
	Token     string
	Error     string
	AccessKey string
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.current(r) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	h.renderLogin(w, r, http.StatusOK, loginData{})
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	d.Token = newID(16)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: d.Token, Path: "/login", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: 3600})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := loginTemplate.Execute(w, d); err != nil {
		h.log.Error("render login page", "err", err)
	}
}

// login checks an access key id and its secret against the server's
// credentials and starts a session.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	id := strings.TrimSpace(r.PostFormValue("access_key_id"))
	secret := r.PostFormValue("secret_access_key")
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(CSRFField))) != 1 {
		h.renderLogin(w, r, http.StatusForbidden, loginData{Error: "The login form expired: please try again.", AccessKey: id})
		return
	}
	if wait := h.throttle.retryAfter(r.RemoteAddr); wait > 0 {
		secs := int(wait.Seconds()) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.log.Info("console login throttled", "access-key-id", id, "remote", r.RemoteAddr)
		h.renderLogin(w, r, http.StatusTooManyRequests, loginData{Error: fmt.Sprintf("Too many failed sign-ins from this address: try again in %d s.", secs), AccessKey: id})
		return
	}
	want, p, err := h.opts.Credentials.Lookup(r.Context(), id, "")
	if err != nil {
		// Compare anyway, so an unknown key takes as long as a wrong
		// secret.
		want = "\x00unknown access key, compared for timing only\x00"
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 || err != nil {
		h.throttle.failed(r.RemoteAddr)
		h.log.Info("console login refused", "access-key-id", id, "remote", r.RemoteAddr)
		h.renderLogin(w, r, http.StatusUnauthorized, loginData{Error: "The access key ID or the secret access key is not right.", AccessKey: id})
		return
	}
	h.throttle.succeeded(r.RemoteAddr)
	s := h.sessions.create(p)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, Expires: s.expires, MaxAge: int(h.opts.SessionTTL / time.Second)})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1})
	h.log.Info("console login", "principal", p.ARN, "access-key-id", id, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	h.sessions.delete(s.id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// session tells the page who is logged in and the CSRF token to send.
func (h *Handler) session(w http.ResponseWriter, _ *http.Request, s *session) {
	writeJSON(w, http.StatusOK, map[string]any{
		"principal": s.principal.ARN, "accessKeyId": s.principal.AccessKeyID, "csrfToken": s.csrf,
		"accountId": h.opts.AccountID, "region": h.opts.Region, "expires": s.expires.UTC().Format(time.RFC3339),
	})
}
