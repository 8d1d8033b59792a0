package image_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gitlab.com/hydrafy/hydrafy/internal/nixtest"
	"gitlab.com/hydrafy/hydrafy/internal/synth"
	"gitlab.com/hydrafy/hydrafy/reconciler/image"
)

// BenchmarkStage stages a 100-path, one-path-per-layer image of 30 kB
// files from a loopback registry in this process: for profiling Stage
// (the seed benchmark times it against a baseline).
func BenchmarkStage(b *testing.B) {
	for _, files := range []int{25, 100} {
		b.Run(fmt.Sprintf("%dfiles-per-path", files), func(b *testing.B) {
			rel := nixtest.GoImage(b, synth.Release(synth.ReleaseOptions{Version: fmt.Sprint(files), Paths: 100, FilesPerPath: files, FileSize: 30_000}), synth.ImageOptions{})
			ref := nixtest.Registry(b) + "/bench/nix:1"
			nixtest.PushImage(b, ref, rel.Image)
			stageIn := b.TempDir()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st, err := image.Stage(context.Background(), ref, image.Options{StageIn: stageIn})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(st.Bytes)
				b.StopTimer()
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
				if left, _ := os.ReadDir(stageIn); len(left) != 0 {
					b.Fatalf("%s is left behind", filepath.Join(stageIn, left[0].Name()))
				}
				b.StartTimer()
			}
		})
	}
}
