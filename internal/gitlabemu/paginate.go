package gitlabemu

import (
	"fmt"
	"strconv"
	"strings"
)

// paginate returns the page of items the request asks for (page, per_page;
// GitLab's defaults 1 and 20, at most 100) and sets GitLab's pagination
// headers and Link header.
func paginate[T any](c *call, items []T) []T {
	q := c.r.URL.Query()
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per < 1 {
		per = 20
	}
	per = min(per, 100)
	pages := max((len(items)+per-1)/per, 1)
	h := c.w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(len(items)))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Prev-Page", "")
	h.Set("X-Next-Page", "")
	link := func(rel string, n int) string {
		u := *c.r.URL
		v := u.Query()
		v.Set("page", strconv.Itoa(n))
		v.Set("per_page", strconv.Itoa(per))
		u.RawQuery = v.Encode()
		return fmt.Sprintf("<%s%s>; rel=%q", baseOf(c), u.RequestURI(), rel)
	}
	links := []string{}
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
		links = append(links, link("prev", page-1))
	}
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
		links = append(links, link("next", page+1))
	}
	links = append(links, link("first", 1), link("last", pages))
	h.Set("Link", strings.Join(links, ", "))
	start := min((page-1)*per, len(items))
	end := min(start+per, len(items))
	return items[start:end]
}

func baseOf(c *call) string { return "http://" + c.r.Host }
