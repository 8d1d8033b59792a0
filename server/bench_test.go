package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkWebhook drives POST /webhooks/gitlab on loopback at a fixed rate
// (500 requests/s for 3 s, open loop: one request every 2 ms whatever the
// answers) and reports the latency percentiles. "accepted" sends merged-MR
// deliveries that each trigger a pass (passes run back to back meanwhile);
// "ignored" sends deliveries for an unwatched project. Run it with
// -benchtime=1x.
func BenchmarkWebhook(b *testing.B) {
	for _, bc := range []struct {
		name    string
		project string
		want    int
	}{
		{"accepted", "group/app", http.StatusAccepted},
		{"ignored", "group/other", http.StatusOK},
	} {
		b.Run(bc.name, func(b *testing.B) { benchWebhook(b, bc.project, bc.want) })
	}
}

func benchWebhook(b *testing.B, project string, want int) {
	const (
		rate = 500
		span = 3 * time.Second
	)
	r := newRig(b, stager(nil))
	s, err := New(r.opts)
	if err != nil {
		b.Fatal(err)
	}
	url, _ := serveTB(b, s)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	body := mrPayload(project, "merge", "main")

	for b.Loop() {
		n := int(span.Seconds() * rate)
		lat := make([]time.Duration, n)
		codes := make([]int, n)
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		for i := range n {
			<-tick.C
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/gitlab", strings.NewReader(body))
				req.Header.Set("X-Gitlab-Token", testSecret)
				req.Header.Set("X-Gitlab-Event", "Merge Request Hook")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%p-%d", &lat, i))
				start := time.Now()
				resp, err := client.Do(req)
				lat[i] = time.Since(start)
				if err != nil {
					return
				}
				codes[i] = resp.StatusCode
				resp.Body.Close()
			})
		}
		tick.Stop()
		wg.Wait()
		bad := 0
		for _, c := range codes {
			if c != want {
				bad++
			}
		}
		if bad > 0 {
			b.Errorf("%d of %d deliveries not answered %d", bad, n, want)
		}
		slices.Sort(lat)
		p50, p99, worst := lat[n/2], lat[n*99/100], lat[n-1]
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		fmt.Printf("webhook %s at %d req/s for %s: p50 %s, p99 %s, max %s (target p99 < 5ms), triggers %d\n",
			b.Name(), rate, span, p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Microsecond), r.rec.n.Load())
	}
}
