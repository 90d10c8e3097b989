package alerttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// SMS is a message the Twilio stand-in accepted.
type SMS struct {
	To, From, MessagingServiceSid, Body string
}

// Twilio stands in for Twilio's Messages API on loopback. It checks what
// Twilio checks (method, path with the account SID, basic auth with the
// SID and token, form fields) and answers as Twilio does: 201 with a
// message resource, or Twilio's error body.
type Twilio struct {
	URL   string // the base URL for the client
	SID   string
	Token string

	mu   sync.Mutex // guards msgs, fail
	msgs []SMS
	fail []twilioReply
}

type twilioReply struct {
	status, code int
	message      string
	to           string // only for this number ("" any)
}

// StartTwilio starts the stand-in, stopped when t ends.
func StartTwilio(t testing.TB) *Twilio {
	tw := &Twilio{SID: "AC0123456789abcdef0123456789abcdef", Token: "tw-token"}
	srv := httptest.NewServer(http.HandlerFunc(tw.serve))
	t.Cleanup(srv.Close)
	tw.URL = srv.URL
	return tw
}

// FailNext makes the next request get status with Twilio's error code and
// message.
func (tw *Twilio) FailNext(status, code int, message string) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.fail = append(tw.fail, twilioReply{status, code, message, ""})
}

// FailTo makes the next request for number to get status with Twilio's
// error code and message.
func (tw *Twilio) FailTo(to string, status, code int, message string) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.fail = append(tw.fail, twilioReply{status, code, message, to})
}

// Messages returns the messages accepted so far.
func (tw *Twilio) Messages() []SMS {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return append([]SMS(nil), tw.msgs...)
}

func twilioError(w http.ResponseWriter, r twilioReply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	json.NewEncoder(w).Encode(map[string]any{"code": r.code, "message": r.message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", r.code), "status": r.status})
}

func (tw *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	want := "/2010-04-01/Accounts/" + tw.SID + "/Messages.json"
	if r.Method != http.MethodPost || r.URL.Path != want {
		twilioError(w, twilioReply{404, 20404, "The requested resource " + r.URL.Path + " was not found", ""})
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != tw.SID || pass != tw.Token {
		twilioError(w, twilioReply{401, 20003, "Authenticate", ""})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || r.ParseForm() != nil {
		twilioError(w, twilioReply{400, 20001, "Invalid request body", ""})
		return
	}
	m := SMS{To: r.PostForm.Get("To"), From: r.PostForm.Get("From"), MessagingServiceSid: r.PostForm.Get("MessagingServiceSid"), Body: r.PostForm.Get("Body")}
	switch {
	case m.To == "":
		twilioError(w, twilioReply{400, 21604, "A 'To' phone number is required.", ""})
		return
	case m.From == "" && m.MessagingServiceSid == "":
		twilioError(w, twilioReply{400, 21603, "A 'From' phone number is required.", ""})
		return
	case m.Body == "":
		twilioError(w, twilioReply{400, 21602, "Message body is required.", ""})
		return
	case len(m.Body) > 1600:
		twilioError(w, twilioReply{400, 21617, "The concatenated message body exceeds the 1600 character limit.", ""})
		return
	}
	tw.mu.Lock()
	if i := slices.IndexFunc(tw.fail, func(f twilioReply) bool { return f.to == "" || f.to == m.To }); i >= 0 {
		f := tw.fail[i]
		tw.fail = slices.Delete(tw.fail, i, i+1)
		tw.mu.Unlock()
		twilioError(w, f)
		return
	}
	tw.msgs = append(tw.msgs, m)
	n := len(tw.msgs)
	tw.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"sid": fmt.Sprintf("SM%032d", n), "status": "queued", "to": m.To, "body": m.Body})
}
