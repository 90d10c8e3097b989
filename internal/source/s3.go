package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3 lists and reads log archives in S3 buckets (or S3-compatible stores).
type S3 struct {
	client *s3.Client
}

// NewS3 makes a client as every AWS tool does: credentials and region
// from the standard chain (environment, AWS_PROFILE and the shared files,
// web identity, container and instance roles). endpoint, or
// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, names an S3-compatible store,
// addressed path-style.
func NewS3(ctx context.Context, endpoint string) (*S3, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if endpoint == "" {
		endpoint = cmpOr(os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"))
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
	})
	return &S3{client: client}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// IsS3 reports whether name is an s3:// URL.
func IsS3(name string) bool { return strings.HasPrefix(name, "s3://") }

// Object is an object to read.
type Object struct {
	Bucket, Key string
	Modified    time.Time
	Size        int64
}

// URL is s3://bucket/key.
func (o Object) URL() string { return "s3://" + o.Bucket + "/" + o.Key }

// List returns the objects url names (s3://bucket/prefix: every object
// under the prefix; s3://bucket/key: that one), in key order, so rotated
// archives come as their files would. Objects last modified before since
// are left out, never fetched (since zero: none). Errors name the bucket
// and S3's error code.
func (c *S3) List(ctx context.Context, url string, since time.Time) ([]Object, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(url, "s3://"), "/")
	if bucket == "" {
		return nil, fmt.Errorf("%s: no bucket", url)
	}
	var out []Object
	p := s3.NewListObjectsV2Paginator(c.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3://%s/%s: %w", bucket, prefix, s3Error(err))
		}
		for _, o := range page.Contents {
			obj := Object{Bucket: bucket, Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				obj.Modified = *o.LastModified
			}
			// S3 keeps whole seconds: an object of since's second may hold
			// lines after since.
			if strings.HasSuffix(obj.Key, "/") || !since.IsZero() && obj.Modified.Before(since.Truncate(time.Second)) {
				continue
			}
			out = append(out, obj)
		}
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Open streams o (never stored whole), decompressed by its content.
func (c *S3) Open(ctx context.Context, o Object) (*Input, error) {
	resp, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(o.Key)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.URL(), s3Error(err))
	}
	in, err := NewInput(o.URL(), resp.Body, resp.Body)
	if err != nil {
		return nil, err
	}
	in.ModTime = o.Modified
	return in, nil
}

// s3Error is err with S3's error code in front (AccessDenied,
// NoSuchBucket, InvalidAccessKeyId, ...).
func s3Error(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}
