package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/parquet"
)

// DirConfig configures a Dir.
type DirConfig struct {
	// Root is the directory the AWSLogs tree is written under: a path or a
	// file:///path URL (ParseDestination).
	Root   string
	Layout Layout
	// Format renders the records; *flow.Format implements Renderer.
	Format Renderer
	// MaxObjectBytes cuts an object when its uncompressed text would exceed
	// it; 0 means DefaultMaxObjectBytes (75 MB).
	MaxObjectBytes int64
	// GzipLevel is the compression level, 1 (fastest) to 9 (smallest); 0
	// means DefaultGzipLevel.
	GzipLevel int
	// ParquetCompression compresses Parquet objects (Layout.Parquet):
	// parquet.Gzip (default) or parquet.Zstd.
	ParquetCompression parquet.Codec
	// PublishOnAdvance publishes objects at every Advance instead of at
	// the end of their 5-minute period (see ObjectConfig).
	PublishOnAdvance bool
}

// DirStats counts what a Dir published and lost.
type DirStats = ObjectStats

// Dir is the local directory destination: objects in the S3 layout under a
// root directory, published atomically. Each object is staged in a dot-named
// temporary file (.tmp-*) in its final folder, synced, renamed to its final
// name, and the folder is synced, so a reader never sees a partial object
// and a published object survives a crash.
type Dir struct {
	root string
	w    *ObjectWriter
}

// NewDir validates cfg and creates the root directory.
func NewDir(cfg DirConfig) (*Dir, error) {
	kind, root, err := ParseDestination(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	if kind != DestinationFile {
		return nil, fmt.Errorf("root %q: not a local directory", cfg.Root)
	}
	w, err := NewObjectWriter(ObjectConfig{
		Layout:             cfg.Layout,
		Format:             cfg.Format,
		MaxObjectBytes:     cfg.MaxObjectBytes,
		GzipLevel:          cfg.GzipLevel,
		ParquetCompression: cfg.ParquetCompression,
		PublishOnAdvance:   cfg.PublishOnAdvance,
	}, dirStore{root: root})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create root %s: %w", root, err)
	}
	return &Dir{root: root, w: w}, nil
}

// Root returns the directory objects are written under.
func (d *Dir) Root() string { return d.root }

// Write appends records of one closed window, sorted, to the objects of
// their periods; see ObjectWriter.Write.
func (d *Dir) Write(recs []flow.Record) error { return d.w.Write(recs) }

// Advance declares that every record with End < watermark has been written
// and publishes the objects of the periods that end at or before watermark.
func (d *Dir) Advance(watermark int64) error { return d.w.Advance(watermark) }

// Close publishes every object still open.
func (d *Dir) Close() error { return d.w.Close() }

// Stats returns what was published and lost so far.
func (d *Dir) Stats() DirStats { return d.w.Stats() }

// Published returns the keys of the published objects, which are their paths
// relative to Root with '/' separators, in publishing order.
func (d *Dir) Published() []string { return d.w.Published() }

// dirStore stages objects as temporary files beside their final names.
type dirStore struct {
	root string
}

func (s dirStore) Create(folder string) (Pending, error) {
	dir := filepath.Join(s.root, filepath.FromSlash(folder))
	if err := mkdirAllSynced(s.root, folder); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	return &dirPending{f: f, root: s.root, folder: folder}, nil
}

// mkdirAllSynced creates root/folder and syncs the parent of every folder
// it creates, so the new entries survive a crash along with the objects in
// them.
func mkdirAllSynced(root, folder string) error {
	dir := root
	for elem := range strings.SplitSeq(folder, "/") {
		parent := dir
		dir = filepath.Join(dir, elem)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrExist) {
			if fi, statErr := os.Stat(dir); statErr == nil && fi.IsDir() {
				continue
			}
			return fmt.Errorf("create folder %s: not a directory", dir)
		}
		if err != nil {
			return fmt.Errorf("create folder: %w", err)
		}
		if err := syncDir(parent); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	err = f.Sync()
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

// dirPending is an object staged in a temporary file.
type dirPending struct {
	f      *os.File
	root   string
	folder string
	closed bool
}

func (p *dirPending) Write(b []byte) (int, error) { return p.f.Write(b) }

func (p *dirPending) Publish(key string) error {
	if path.Dir(key) != p.folder {
		return fmt.Errorf("key %s is not in folder %s", key, p.folder)
	}
	final := filepath.Join(p.root, filepath.FromSlash(key))
	// The mode is set explicitly because CreateTemp makes the file private;
	// published objects are read by other tools, like files os.Create makes.
	if err := p.f.Chmod(0o644); err != nil {
		return err
	}
	if err := p.f.Sync(); err != nil {
		return err
	}
	p.closed = true
	if err := p.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(p.f.Name(), final); err != nil {
		return err
	}
	return syncDir(filepath.Dir(final))
}

// Discard removes the temporary file; after a successful rename there is
// none left, and removing it reports that it does not exist, which is fine.
func (p *dirPending) Discard() error {
	if !p.closed {
		p.closed = true
		p.f.Close()
	}
	if err := os.Remove(p.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
