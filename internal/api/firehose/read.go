package firehose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Reading back what the deliverer wrote, for the web console's records
// explorer: where a stream delivers, and the objects there.

// Destination is where a delivery stream writes its objects: keys
// Prefix + YYYY/MM/DD/HH/ + Stream-1-YYYY-MM-DD-HH-MM-SS-UUID (ObjectKey).
type Destination struct {
	Stream    string
	StreamARN string
	Bucket    string
	Prefix    string
	// GZIP says the objects are gzipped (their keys end in ".gz").
	GZIP bool
	// IntervalInSeconds is the stream's buffering interval: records wait
	// up to this long in the store before they are in an object.
	IntervalInSeconds int
}

// Destination returns where the stream name delivers; the error is
// ResourceNotFoundException (an *api.Error) when there is no such stream.
func (s *Service) Destination(ctx context.Context, name string) (Destination, error) {
	if err := checkStreamName(name); err != nil {
		return Destination{}, err
	}
	st, err := s.streamByName(ctx, s.db, name)
	if err != nil {
		return Destination{}, err
	}
	return Destination{Stream: st.Name, StreamARN: s.StreamARN(st.Name), Bucket: st.Bucket(), Prefix: st.Prefix,
		GZIP: st.Compression == "GZIP", IntervalInSeconds: st.IntervalS}, nil
}

// Objects returns what reads the objects the service delivers (its
// Buckets, when they can be read back: DirBuckets and S3Buckets can);
// nil otherwise.
func (s *Service) Objects() ObjectReader {
	r, _ := s.buckets.(ObjectReader)
	return r
}

// Object is a delivered object.
type Object struct {
	Bucket, Key string
	// Name says where it is, for messages: a path or s3://bucket/key.
	Name string
	Size int64
}

// ObjectReader lists and reads delivered objects.
type ObjectReader interface {
	// List calls fn for each object of bucket whose key starts with
	// prefix; nothing (and no error) when there is none.
	List(ctx context.Context, bucket, prefix string, fn func(Object) error) error
	// Open reads an object.
	Open(ctx context.Context, bucket, key string) (io.ReadCloser, error)
}

// path returns the file of bucket/key, refusing what would leave the
// bucket's directory (keys come from requests here).
func (d DirBuckets) path(bucket, key string) (string, error) {
	if _, err := bucketOfARN("arn:aws:s3:::" + bucket); err != nil {
		return "", fmt.Errorf("read bucket %s: %w", bucket, err)
	}
	if key == "" {
		return filepath.Join(d.Dir, bucket), nil
	}
	k := strings.TrimSuffix(key, "/")
	if filepath.Clean("/"+k) != "/"+k {
		return "", fmt.Errorf("read object %s/%s: the key is not a clean relative path", bucket, key)
	}
	return filepath.Join(d.Dir, bucket, filepath.FromSlash(k)), nil
}

// List implements ObjectReader: the files under Dir/bucket/ whose keys
// (relative paths) start with prefix, directory by directory in name
// order. Hidden files (Put's temporary files) are left out.
func (d DirBuckets) List(ctx context.Context, bucket, prefix string, fn func(Object) error) error {
	dirKey := prefix[:strings.LastIndexByte(prefix, '/')+1]
	start, err := d.path(bucket, dirKey)
	if err != nil {
		return err
	}
	root := filepath.Join(d.Dir, bucket)
	err = filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // nothing delivered under the prefix yet
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			// Only folders on the way to the prefix, or under it.
			if k := key + "/"; !strings.HasPrefix(k, prefix) && !strings.HasPrefix(prefix, k) {
				return fs.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil // removed since the listing
		}
		return fn(Object{Bucket: bucket, Key: key, Name: p, Size: fi.Size()})
	})
	if err != nil {
		return fmt.Errorf("list %s/%s: %w", bucket, prefix, err)
	}
	return nil
}

// Open implements ObjectReader.
func (d DirBuckets) Open(_ context.Context, bucket, key string) (io.ReadCloser, error) {
	if key == "" || strings.HasSuffix(key, "/") {
		return nil, fmt.Errorf("read object %s/%s: not an object key", bucket, key)
	}
	p, err := d.path(bucket, key)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// List implements ObjectReader: ListObjectsV2 of the prefix, in key order.
func (b S3Buckets) List(ctx context.Context, bucket, prefix string, fn func(Object) error) error {
	p := awss3.NewListObjectsV2Paginator(b.Client, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if err := fn(Object{Bucket: bucket, Key: key, Name: "s3://" + bucket + "/" + key, Size: aws.ToInt64(o.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Open implements ObjectReader.
func (b S3Buckets) Open(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	out, err := b.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	return out.Body, nil
}
