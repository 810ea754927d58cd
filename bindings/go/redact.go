package fleets

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What the package shows (a printed Config or Client, an error message) never carries a
// credential or a terminal control character: URLs are shown without their password, and
// error messages, which may quote server text, are scrubbed of the client's credentials
// and have their control characters escaped.

// redacted replaces a password or secret in what is shown.
const redacted = "REDACTED"

// shortSecret: secrets shorter than this are masked only where they stand alone (see
// credentials.scrub).
const shortSecret = 8

// printable returns s with every control character (C0, DEL, C1) written as a visible
// \xNN escape, and invalid UTF-8 bytes likewise, so that text from a server cannot forge
// log lines or drive a terminal.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// splitUserinfo returns the parts of a URL with an '@' after "scheme://". The userinfo
// runs to the LAST '@', so that a password holding '/', '?', '#' or '@' stays inside it.
func splitUserinfo(u string) (scheme, userinfo, rest string, ok bool) {
	scheme, after, found := strings.Cut(u, "://")
	if !found {
		return "", "", "", false
	}
	i := strings.LastIndexByte(after, '@')
	if i < 0 {
		return "", "", "", false
	}
	return scheme, after[:i], after[i+1:], true
}

// redactURL returns u for display, its password replaced by REDACTED:
// "scheme://user:password@host..." shows as "scheme://user:REDACTED@host...". Whatever
// precedes the last '@' is taken as credentials, so a password containing '/', '?', '#',
// '@', ':' or '%' is hidden whole, and a user name that itself holds one of those is hidden
// too. Text with an '@' but no "scheme://" shows as REDACTED. Control characters are
// escaped.
func redactURL(u string) string {
	if !strings.Contains(u, "@") {
		return printable(u)
	}
	scheme, userinfo, rest, ok := splitUserinfo(u)
	if !ok {
		return redacted
	}
	user, _, hasPassword := strings.Cut(userinfo, ":")
	shown := user
	switch {
	case strings.ContainsAny(user, "/?#@"):
		shown = redacted
	case hasPassword:
		shown = user + ":" + redacted
	}
	return printable(scheme + "://" + shown + "@" + rest)
}

// rustDebug returns s as Rust's {:?} writes it between the quotes: how libfleets quotes a
// value it echoes in a message (an endpoint URL, for one).
func rustDebug(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == 0:
			b.WriteString(`\0`)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\u{%x}`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// basicForms are the ways "user:password" appears base64-encoded (an echoed
// Authorization or Proxy-Authorization header).
func basicForms(user, password string) []string {
	raw := []byte(user + ":" + password)
	return []string{
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
	}
}

// credentials are what one client was configured with, to scrub from its error messages.
// They are the caller's own strings (no copies); what to look for is derived only while
// scrubbing an error. They are never printed.
type credentials struct {
	key, secret string
	urls        []string // endpoint and proxy URLs, which may carry a password
}

// String and GoString keep the credentials out of any %v, %+v or %#v.
func (*credentials) String() string   { return "fleets.credentials(not shown)" }
func (*credentials) GoString() string { return "fleets.credentials(not shown)" }

type replacement struct {
	find, with string
	wholeWord  bool
}

func (c *credentials) replacements() []replacement {
	var out []replacement
	secret := func(v string) {
		// A short secret is replaced only where it stands alone: inside a word it is more
		// likely a coincidence, and masking it there would tell the reader the secret
		// ("UnREDACTEDhorized" for the secret "aut").
		if v == "" {
			return
		}
		short := len(v) < shortSecret
		out = append(out, replacement{v, redacted, short}, replacement{rustDebug(v), redacted, short})
	}
	for _, u := range c.urls {
		if u == "" {
			continue
		}
		shown := redactURL(u)
		out = append(out, replacement{u, shown, false}, replacement{rustDebug(u), shown, false})
		if _, userinfo, _, ok := splitUserinfo(u); ok {
			user, password, hasPassword := strings.Cut(userinfo, ":")
			if hasPassword && password != "" {
				secret(password)
				for _, f := range basicForms(user, password) {
					out = append(out, replacement{f, redacted, false})
				}
				du, err1 := url.PathUnescape(user)
				dp, err2 := url.PathUnescape(password)
				if err1 == nil && err2 == nil {
					secret(dp)
					for _, f := range basicForms(du, dp) {
						out = append(out, replacement{f, redacted, false})
					}
				}
			}
		}
	}
	if c.secret != "" {
		secret(c.secret)
		for _, f := range basicForms(c.key, c.secret) {
			out = append(out, replacement{f, redacted, false})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].find) > len(out[j].find) })
	return out
}

// scrub returns msg without any of the credentials (plain, Rust-quoted or base64) and with
// its control characters escaped. A nil receiver only escapes.
func (c *credentials) scrub(msg string) string {
	if c != nil {
		for _, r := range c.replacements() {
			if r.find == "" || r.find == r.with {
				continue
			}
			if r.wholeWord {
				re := regexp.MustCompile(`(^|[^A-Za-z0-9])` + regexp.QuoteMeta(r.find) + `($|[^A-Za-z0-9])`)
				// ${1}/${2} keep the neighbours; repeat for adjacent matches sharing one.
				for prev := ""; prev != msg; {
					prev = msg
					msg = re.ReplaceAllString(msg, "${1}"+strings.ReplaceAll(r.with, "$", "$$")+"${2}")
				}
			} else {
				msg = strings.ReplaceAll(msg, r.find, r.with)
			}
		}
	}
	return printable(msg)
}
