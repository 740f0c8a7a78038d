package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestLanguageKoreanFirstForPagesAcceptLanguageForAPI(t *testing.T) {
	cases := []struct {
		path, acceptLanguage, cookie, want string
	}{
		{"/", "en-US,en;q=0.9", "", "ko"},              // a page: Korean whatever the browser says
		{"/programs", "", "", "ko"},                    // no preference at all
		{"/programs", "en-US", "en", "en"},             // the page's English switch wins
		{"/programs", "ko-KR", "en", "en"},             // even over a Korean browser
		{"/programs", "en-US", "xx", "ko"},             // a forged cookie value is ignored
		{"/api/v1/claims", "en-US,en;q=0.9", "", "en"}, // API messages follow Accept-Language
		{"/api/v1/claims", "fr-FR,ko;q=0.5", "", "ko"}, // the first supported language
		{"/api/v1/claims", "fr-FR", "", "ko"},          // nothing supported: Korean
		{"/api/v1/claims", "ko-KR", "en", "en"},        // the cookie applies to the API too
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.acceptLanguage != "" {
			r.Header.Set("Accept-Language", c.acceptLanguage)
		}
		if c.cookie != "" {
			r.AddCookie(&http.Cookie{Name: langCookie, Value: c.cookie})
		}
		if got := langFromRequest(r); got != c.want {
			t.Errorf("%s Accept-Language %q cookie %q: %s, want %s", c.path, c.acceptLanguage, c.cookie, got, c.want)
		}
	}
}
