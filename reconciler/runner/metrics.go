package runner

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// jobsMetric is the gauge gitlab-runner's metrics server exports for its
// running jobs, one series per runner and stage.
const jobsMetric = "gitlab_runner_jobs"

// scrapeJobs sums gitlab_runner_jobs over all series at url (Prometheus
// text format).
func scrapeJobs(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("reading runner metrics: %w", err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading runner metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("reading runner metrics %s: %s", url, resp.Status)
	}
	n, err := sumGauge(bufio.NewScanner(resp.Body), jobsMetric)
	if err != nil {
		return 0, fmt.Errorf("reading runner metrics %s: %w", url, err)
	}
	return n, nil
}

// sumGauge adds up every sample of metric name.
func sumGauge(sc *bufio.Scanner, name string) (int, error) {
	var sum float64
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return 0, fmt.Errorf("malformed sample %q", line)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("malformed sample %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("malformed sample %q: %w", line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return int(sum), nil
}
