package pin

import (
	"bytes"
	"os"
	"testing"
)

// benchFile is the realistic CI file repeated as documents of one stream:
// about 7,000 lines with 350 references.
func benchFile(b *testing.B) []byte {
	b.Helper()
	doc, err := os.ReadFile("testdata/gitlab-ci/input.yml")
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Repeat(append([]byte("---\n"), doc...), 50)
}

// BenchmarkRewrite pins every reference of a large file, the check of the
// result included.
func BenchmarkRewrite(b *testing.B) {
	src := benchFile(b)
	opts := Options{Image: "nixos/nix", Digest: newDigest}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, _, err := Rewrite(src, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse is the baseline for BenchmarkRewrite: parsing the same
// file once with the YAML library.
func BenchmarkParse(b *testing.B) {
	src := benchFile(b)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := parse(src); err != nil {
			b.Fatal(err)
		}
	}
}
