// Package web holds the server-rendered UI: templates, message catalogs
// (Korean first, English second) and static assets, all embedded in the binary.
// KRDS (the Korean government design system) is installed from npm by the build
// into static/vendor and embedded from there.
package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/relief/relief/models/rules"
	"golang.org/x/text/language"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed i18n/*.json
var catalogFS embed.FS

//go:embed all:static
var staticFS embed.FS

// Static is the static asset tree (CSS, JS, fonts, vendor/krds).
func Static() fs.FS {
	sub, _ := fs.Sub(staticFS, "static")
	return sub
}

// Languages the UI speaks, default first.
var Languages = []string{"ko", "en"}

// KST is the time zone every date is shown in.
var KST = rules.KST

// Renderer renders pages in a language.
type Renderer struct {
	bundle *i18n.Bundle
	pages  map[string]*template.Template
}

// New parses every template and catalog; a broken template fails the boot.
func New() (*Renderer, error) {
	bundle := i18n.NewBundle(language.Korean)
	bundle.RegisterUnmarshalFunc("json", json.Unmarshal)
	// Catalogs are i18n/<lang>.json plus one <area>.<lang>.json per feature area.
	files, err := fs.Glob(catalogFS, "i18n/*.json")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if _, err := bundle.LoadMessageFileFS(catalogFS, f); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", f, err)
		}
	}
	r := &Renderer{bundle: bundle, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", name)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", base, err)
		}
		r.pages[base] = t
	}
	return r, nil
}

// Localizer translates message ids for one request.
type Localizer struct {
	Lang string
	l    *i18n.Localizer
}

// T translates id; args are key, value pairs for the message template.
func (l *Localizer) T(id string, args ...any) string {
	var data map[string]any
	if len(args) > 0 {
		data = map[string]any{}
		for i := 0; i+1 < len(args); i += 2 {
			data[fmt.Sprint(args[i])] = args[i+1]
		}
	}
	s, err := l.l.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		return id // visible, and caught by the catalog test
	}
	return s
}

// Localizer returns the localizer for lang (an unsupported one gets Korean).
func (r *Renderer) Localizer(lang string) *Localizer {
	if lang != "en" {
		lang = "ko"
	}
	return &Localizer{Lang: lang, l: i18n.NewLocalizer(r.bundle, lang)}
}

// Page is what every template receives.
type Page struct {
	L         *Localizer
	Title     string // message id
	User      any    // *models.User or nil
	Path      string // current path, for the language switch
	RequestID string
	Flash     string // message id shown at the top
	Data      any
}

// Render writes page name into w.
func (r *Renderer) Render(w io.Writer, name string, p *Page) error {
	t, ok := r.pages[name]
	if !ok {
		return fmt.Errorf("no page %q", name)
	}
	// Render into a buffer so a template error never sends half a page.
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		return err
	}
	_, err := buf.WriteTo(w)
	return err
}

// RenderPartial renders one named block (for htmx partial updates).
func (r *Renderer) RenderPartial(w io.Writer, page, block string, p *Page) error {
	t, ok := r.pages[page]
	if !ok {
		return fmt.Errorf("no page %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, p); err != nil {
		return err
	}
	_, err := buf.WriteTo(w)
	return err
}

var funcs = template.FuncMap{
	"t":       func(l *Localizer, id string, args ...any) string { return l.T(id, args...) },
	"won":     rules.FormatWon,
	"num":     rules.FormatNumber,
	"brn":     FormatBRN,
	"kst":     func(t time.Time) string { return t.In(KST).Format("2006-01-02 15:04") },
	"kstdate": func(t time.Time) string { return t.In(KST).Format("2006-01-02") },
	"iso":     func(t time.Time) string { return t.Format(time.RFC3339) },
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
	"seq": func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		return s
	},
	"add": func(a, b int) int { return a + b },
}

// FormatBRN writes a 10-digit business number as 123-45-67890.
func FormatBRN(s string) string {
	if len(s) != 10 {
		return s
	}
	return s[:3] + "-" + s[3:5] + "-" + s[5:]
}
