package watch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMissingPlatforms(t *testing.T) {
	want, err := parsePlatforms([]string{"linux/amd64", "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		have []string
		want []string
	}{
		{[]string{"linux/amd64", "linux/arm64"}, nil},
		{[]string{"linux/amd64", "linux/arm64/v8"}, nil},
		{[]string{"linux/amd64"}, []string{"linux/arm64"}},
		{[]string{"linux/arm/v7", "windows/amd64"}, []string{"linux/amd64", "linux/arm64"}},
		{nil, []string{"linux/amd64", "linux/arm64"}},
	} {
		if diff := cmp.Diff(tc.want, missingPlatforms(tc.have, want)); diff != "" {
			t.Errorf("missingPlatforms(%v) (-want +got):\n%s", tc.have, diff)
		}
	}
}
