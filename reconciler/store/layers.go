package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gitlab.com/hydrafy/hydrafy/internal/fsutil"
)

// stateDir is hydrafy's own state next to the store: DIR/.hydrafy.
const stateDir = ".hydrafy"

// Layer is one image layer merged into a store: its digest and the store
// paths its image history lists (none for the top layer).
type Layer struct {
	Digest string   `json:"digest"`
	Paths  []string `json:"paths,omitempty"`
}

// layerFile is DIR/.hydrafy/layers.json.
type layerFile struct {
	// Layers maps every merged layer digest to its store paths.
	Layers map[string][]string `json:"layers"`
	// Images maps each seeded image (as given: ref@digest) to its layers.
	Images map[string]imageRecord `json:"images"`
}

type imageRecord struct {
	Layers   []string  `json:"layers"`
	Recorded time.Time `json:"recorded"`
	// Paths are every store path of the image (its db's rows); older
	// records lack them, and the layers' paths stand in.
	Paths []string `json:"paths,omitempty"`
}

// paths returns the store paths the image holds.
func (lf *layerFile) paths(rec imageRecord) []string {
	if len(rec.Paths) > 0 {
		return rec.Paths
	}
	var out []string
	for _, l := range rec.Layers {
		out = append(out, lf.Layers[l]...)
	}
	return out
}

func layerFileName(liveDir string) string {
	return filepath.Join(liveDir, stateDir, "layers.json")
}

func readLayerFile(liveDir string) (*layerFile, error) {
	lf := &layerFile{Layers: map[string][]string{}, Images: map[string]imageRecord{}}
	b, err := os.ReadFile(layerFileName(liveDir))
	if errors.Is(err, fs.ErrNotExist) {
		return lf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading layer records: %w", err)
	}
	if err := json.Unmarshal(b, lf); err != nil {
		return nil, fmt.Errorf("reading layer records %s: %w", layerFileName(liveDir), err)
	}
	if lf.Layers == nil {
		lf.Layers = map[string][]string{}
	}
	if lf.Images == nil {
		lf.Images = map[string]imageRecord{}
	}
	return lf, nil
}

// write replaces the file atomically: a crash leaves the old or the new one.
func (lf *layerFile) write(liveDir string) error {
	b, err := json.MarshalIndent(lf, "", "  ")
	if err != nil {
		return fmt.Errorf("writing layer records: %w", err)
	}
	if err := fsutil.WriteFileAtomic(layerFileName(liveDir), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing layer records: %w", err)
	}
	return nil
}

// RecordLayers records that image (a reference with its digest) and its
// layers are in the store at liveDir. Call it after a successful merge or
// install; a crash before it only costs a download next time.
func RecordLayers(liveDir, image string, layers []Layer) error {
	return RecordImage(liveDir, image, layers, nil)
}

// RecordImage is RecordLayers that also records every store path of the
// image (paths: its db's rows), which garbage collection keeps or deletes
// as one image.
func RecordImage(liveDir, image string, layers []Layer, paths []string) error {
	lf, err := readLayerFile(liveDir)
	if err != nil {
		return err
	}
	rec := imageRecord{Recorded: time.Now().UTC(), Paths: append([]string(nil), paths...)}
	sort.Strings(rec.Paths)
	for _, l := range layers {
		paths := append([]string(nil), l.Paths...)
		sort.Strings(paths)
		lf.Layers[l.Digest] = paths
		rec.Layers = append(rec.Layers, l.Digest)
	}
	lf.Images[image] = rec
	return lf.write(liveDir)
}

// ResetLayers forgets every record of liveDir: after --replace the store
// holds one image only.
func ResetLayers(liveDir string) error {
	err := os.Remove(layerFileName(liveDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resetting layer records: %w", err)
	}
	return nil
}

// MergedLayers returns the layer digests recorded for liveDir, each with
// the store paths its history listed.
func MergedLayers(liveDir string) (map[string][]string, error) {
	lf, err := readLayerFile(liveDir)
	if err != nil {
		return nil, err
	}
	return lf.Layers, nil
}

// SeededImages returns the images recorded for liveDir, sorted.
func SeededImages(liveDir string) ([]string, error) {
	lf, err := readLayerFile(liveDir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(lf.Images))
	for img := range lf.Images {
		out = append(out, img)
	}
	sort.Strings(out)
	return out, nil
}

// ImagePaths returns every store path that the db of the staged store at
// stagedDir registers: all of the image's paths, skipped layers' too.
func ImagePaths(ctx context.Context, stagedDir string) ([]string, error) {
	img, err := readImageDB(ctx, stagedDir)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(img.rows))
	for i, r := range img.rows {
		out[i] = r.path
	}
	return out, nil
}
