package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/cloudwatch"
	"github.com/flowlog/flowlog/internal/sink/kafka"
	"github.com/flowlog/flowlog/internal/sink/s3"
)

// agentOpeners are the destination kinds the agent writes to, one opener
// per kind: local directories (the agent's own), S3, Kafka, CloudWatch
// Logs and Firehose. An agent that follows a server (srv not nil) writes
// its cloud-watch-logs flow logs to the server's own CloudWatch Logs API,
// signed with the sessions of their delivery roles (or the agent's keys
// when the server issues none), and its kinesis-data-firehose flow logs
// to the server's own Firehose API with the agent's keys.
func agentOpeners(srv *agent.Server) map[sink.DestinationKind]agent.Opener {
	m := agent.DefaultOpeners()
	m[sink.DestinationS3] = openAgentS3
	m[sink.DestinationKafka] = openAgentKafka
	m[sink.DestinationCloudWatch] = openAgentCloudWatch
	m[sink.DestinationFirehose] = openAgentFirehose
	if srv != nil {
		m[sink.DestinationCloudWatch] = serverCloudWatchOpener(srv)
		m[sink.DestinationFirehose] = serverFirehoseOpener(srv)
	}
	return m
}

// versionString is the version the agent reports to the server.
func versionString() string {
	if info, ok := debug.ReadBuildInfo(); ok && version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

// serverAPI is how an agent calls one of its server's own AWS APIs
// (CloudWatch Logs, Firehose) for a flow log.
type serverAPI struct {
	region string
	creds  aws.CredentialsProvider
	http   *http.Client
}

// newServerAPI signs in region (the destination ARN's; "" is the
// server's) with fl.Credentials when set (a delivery role's sessions),
// else the agent's keys, over the server's HTTP client (its CA).
func newServerAPI(srv *agent.Server, fl agent.FlowLog, region string) (serverAPI, error) {
	if region == "" {
		region = srv.Region
	}
	hc, err := srv.HTTPClient()
	if err != nil {
		return serverAPI{}, err
	}
	var creds aws.CredentialsProvider = credentials.NewStaticCredentialsProvider(srv.AccessKeyID, srv.Secret(), "")
	if fl.Credentials != nil {
		creds = fl.Credentials
	}
	return serverAPI{region: region, creds: creds, http: hc}, nil
}

// serverCloudWatchOpener opens log groups at the server's CloudWatch Logs
// API (endpoint: the server's URL) in the server's region, signed with
// fl.Credentials (its delivery role's sessions) or else the agent's keys.
func serverCloudWatchOpener(srv *agent.Server) agent.Opener {
	return func(_ context.Context, fl agent.FlowLog, _ string, format *flow.Format, _ *inventory.Inventory) (agent.Destination, error) {
		_, location, err := sink.ParseDestination(fl.Destination)
		if err != nil {
			return agent.Destination{}, err
		}
		target, err := cloudwatch.ParseLocation(location)
		if err != nil {
			return agent.Destination{}, err
		}
		api, err := newServerAPI(srv, fl, target.Region)
		if err != nil {
			return agent.Destination{}, err
		}
		client := cloudwatchlogs.New(cloudwatchlogs.Options{
			Region:       api.region,
			BaseEndpoint: aws.String(srv.URL),
			Credentials:  api.creds,
			HTTPClient:   api.http,
		})
		s, err := cloudwatch.New(cloudwatch.Config{Group: target.Group, Format: format, Client: client})
		if err != nil {
			return agent.Destination{}, err
		}
		return agent.Destination{Sink: s}, nil
	}
}

// openAgentS3 opens s3://bucket/prefix (or arn:aws:s3:::bucket/prefix)
// with the standard AWS credential chain, optionally at an S3-compatible
// endpoint. Objects are published as each window closes, like the
// directory destination's.
func openAgentS3(ctx context.Context, fl agent.FlowLog, id string, format *flow.Format, inv *inventory.Inventory) (agent.Destination, error) {
	_, location, err := sink.ParseDestination(fl.Destination)
	if err != nil {
		return agent.Destination{}, err
	}
	loc, err := s3.ParseLocation(location)
	if err != nil {
		return agent.Destination{}, err
	}
	client, err := s3.NewClient(ctx, s3.ClientConfig{EndpointURL: fl.EndpointURL, PathStyle: fl.S3PathStyle})
	if err != nil {
		return agent.Destination{}, err
	}
	layout := agent.Layout(fl, id, inv)
	layout.Prefix = loc.Prefix
	s, err := s3.New(s3.Config{
		Bucket:             loc.Bucket,
		Layout:             layout,
		Format:             format,
		Client:             client,
		MaxObjectBytes:     fl.MaxObjectBytes,
		ParquetCompression: agent.ParquetCodec(fl),
		PublishOnAdvance:   true,
	})
	if err != nil {
		return agent.Destination{}, err
	}
	return agent.Destination{Sink: s}, nil
}

// openAgentKafka opens kafka://host:port[,host:port]/topic[?tls=true&sasl=…]:
// one message per record, keyed by interface id; TLS files and SASL
// credentials come from the agent's FLOWLOG_KAFKA_* variables. It
// connects to the brokers once (at most kafkaPingTimeout): a TLS or SASL
// failure is the flow log's error at once, explained; brokers that are
// down are not (the spool delivers when they are back).
func openAgentKafka(ctx context.Context, fl agent.FlowLog, _ string, format *flow.Format, _ *inventory.Inventory) (agent.Destination, error) {
	_, location, err := sink.ParseDestination(fl.Destination)
	if err != nil {
		return agent.Destination{}, err
	}
	tg, err := kafka.ParseTarget(location)
	if err != nil {
		return agent.Destination{}, err
	}
	sec := tg.Security.FromEnv(os.Getenv)
	s, err := kafka.New(kafka.Config{Brokers: tg.Brokers, Topic: tg.Topic, Format: format, Security: sec})
	if err != nil {
		return agent.Destination{}, err
	}
	if w := sec.Warning(); w != "" {
		slog.Warn(w, "flow_log", fl.ID)
	}
	pctx, cancel := context.WithTimeout(ctx, kafkaPingTimeout)
	defer cancel()
	if err := s.Ping(pctx); err != nil && kafka.IsSecurityError(err) {
		s.Abort()
		s.Close()
		return agent.Destination{}, err
	}
	return agent.Destination{Sink: s}, nil
}

// openAgentCloudWatch opens cloudwatch://GROUP or a log group ARN with the
// standard AWS credential chain (see newCloudWatchSink).
func openAgentCloudWatch(ctx context.Context, fl agent.FlowLog, _ string, format *flow.Format, _ *inventory.Inventory) (agent.Destination, error) {
	_, location, err := sink.ParseDestination(fl.Destination)
	if err != nil {
		return agent.Destination{}, err
	}
	s, err := newCloudWatchSink(ctx, location, format)
	if err != nil {
		return agent.Destination{}, err
	}
	return agent.Destination{Sink: s}, nil
}
