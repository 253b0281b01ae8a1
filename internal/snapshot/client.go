package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Config selects the AWS configuration a Client uses. The zero value uses
// the SDK default chain and region.
type Config struct {
	// Profile is the shared config profile (--profile); "" means the SDK
	// default chain (AWS_PROFILE, then "default").
	Profile string
	// Region is the default region (--region), for hosts without
	// region=; "" means the SDK default (AWS_REGION, the profile's).
	Region string
	// EndpointURL replaces the EC2 endpoint (--endpoint-url), e.g. an
	// emulator on loopback; "" means AWS, though AWS_ENDPOINT_URL_EC2
	// is still honoured by the SDK. It applies to EC2 only, never to
	// the STS or SSO calls that resolve credentials.
	EndpointURL string
	// Logger receives debug records of every EC2 call; nil discards.
	Logger *slog.Logger
	// AppVersion goes into the user agent as app id
	// "orchestrate/AppVersion".
	AppVersion string
}

// ErrNoRegion means a call needs the default region and neither
// Config.Region nor the SDK configuration sets one.
var ErrNoRegion = errors.New("no AWS region: set --region, AWS_REGION or region= for the host")

// Client calls EC2 with the operator's credentials. It keeps one EC2
// client per region and is safe for concurrent use.
type Client struct {
	aws      aws.Config
	endpoint string
	log      *slog.Logger
	create   aws.Retryer

	mu      sync.Mutex
	clients map[string]*ec2.Client
}

// New loads the SDK configuration: config.LoadDefaultConfig with the
// profile and the region of cfg when they are set. It contacts nothing:
// credentials are resolved later, by Credentials or the first call. It
// fails for an unknown profile, a malformed shared config file or a
// malformed EndpointURL.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.EndpointURL != "" {
		u, err := url.Parse(cfg.EndpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") ||
			u.Host == "" {
			return nil, fmt.Errorf("snapshot: parse endpoint url %q: want http(s)://host[:port]", cfg.EndpointURL)
		}
	}

	appID := "orchestrate"
	if cfg.AppVersion != "" {
		appID += "/" + cfg.AppVersion
	}
	opts := []func(*config.LoadOptions) error{config.WithAppID(appID)}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("snapshot: load AWS config: %w", err)
	}

	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{
		aws:      ac,
		endpoint: cfg.EndpointURL,
		log:      log,
		create:   newCreateRetryer(),
		clients:  map[string]*ec2.Client{},
	}, nil
}

// DefaultRegion returns the region used for hosts without region=:
// Config.Region, else the SDK's (AWS_REGION, AWS_DEFAULT_REGION, the
// profile's region), else "". The caller must refuse a host that needs
// the default when it is "".
func (c *Client) DefaultRegion() string { return c.aws.Region }

// Credentials resolves the credentials now, which the SDK would otherwise
// do lazily on the first call, so that a missing or expired credential
// (no keys, an expired SSO session, a failed role assumption) is
// reported before anything is frozen. The error never holds secret
// values. It contacts whatever the chain needs (STS, SSO, IMDS), never
// EC2.
func (c *Client) Credentials(ctx context.Context) error {
	if c.aws.Credentials == nil {
		return errors.New("snapshot: no AWS credentials: no credential provider configured; configure the SDK chain (AWS_PROFILE, aws sso login, ...)")
	}
	start := time.Now()
	creds, err := c.aws.Credentials.Retrieve(ctx)
	if err == nil && !creds.HasKeys() {
		err = errors.New("the provider returned no access key")
	}
	if err != nil {
		return fmt.Errorf("snapshot: no AWS credentials: %w; configure the SDK chain (AWS_PROFILE, aws sso login, ...)", err)
	}
	c.log.Debug("aws credentials", "source", creds.Source,
		"expires", creds.CanExpire, "elapsed", time.Since(start))
	return nil
}

// ec2For returns the cached EC2 client for region, "" meaning the
// default region, creating it on first use.
func (c *Client) ec2For(region string) (*ec2.Client, string, error) {
	if region == "" {
		region = c.aws.Region
	}
	if region == "" {
		return nil, "", fmt.Errorf("snapshot: %w", ErrNoRegion)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[region]; ok {
		return cl, region, nil
	}
	cl := ec2.NewFromConfig(c.aws, func(o *ec2.Options) {
		o.Region = region
		if c.endpoint != "" {
			o.BaseEndpoint = aws.String(c.endpoint)
		}
	})
	c.clients[region] = cl
	return cl, region, nil
}

// logCall records one EC2 call at debug level. attrs are extra key/value
// pairs such as the instance; never credentials.
func (c *Client) logCall(action, region string, start time.Time, err error,
	attrs ...any) {
	attrs = append([]any{"action", action, "region", region,
		"elapsed", time.Since(start)}, attrs...)
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	c.log.Debug("ec2 call", attrs...)
}

// newCreateRetryer is the retryer of CreateSnapshots: the standard one,
// bounded to fit a freeze, that retries throttling and server errors but
// no error without an EC2 response other than a failed dial, since such a
// request may have been carried out.
func newCreateRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = createMaxAttempts
		o.MaxBackoff = createMaxBackoff
		o.Retryables = append([]retry.IsErrorRetryable{
			retry.IsErrorRetryableFunc(noRetryUnanswered),
		}, o.Retryables...)
	})
}

// Bounds of the CreateSnapshots retries: with a 1s throttle base the
// worst case sleeps about 5s in all.
const (
	createMaxAttempts = 4
	createMaxBackoff  = 2 * time.Second
)

// noRetryUnanswered vetoes the retry of an attempt that got no EC2
// response, unless its connection was never made.
func noRetryUnanswered(err error) aws.Ternary {
	if answered(err) || notSent(err) {
		return aws.UnknownTernary
	}
	return aws.FalseTernary
}
