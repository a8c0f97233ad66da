package ec2

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/sink"
	"github.com/flowlog/flowlog/internal/sink/kafka"
)

// Resource, traffic and destination types of CreateFlowLogs.
const (
	ResourceVPC              = "VPC"
	ResourceSubnet           = "Subnet"
	ResourceNetworkInterface = "NetworkInterface"

	DestCloudWatchLogs = "cloud-watch-logs"
	DestS3             = "s3"
	DestFirehose       = "kinesis-data-firehose"
	// DestFile and DestKafka are flowlog's extensions: a directory on
	// every agent's host (S3 object layout) and kafka://broker/topic.
	DestFile  = "file"
	DestKafka = "kafka"
)

// FlowLog is one flow log as DescribeFlowLogs shows it.
type FlowLog struct {
	ID           string
	CreationTime time.Time
	ResourceID   string
	ResourceType string
	TrafficType  string
	// LogDestinationType is cloud-watch-logs, s3, kinesis-data-firehose,
	// file or kafka; LogDestination the ARN, path or URL (for
	// cloud-watch-logs the log group's ARN, LogGroupName its name).
	LogDestinationType       string
	LogDestination           string
	LogGroupName             string
	DeliverLogsPermissionArn string
	// LogFormat is the format text; the default format when none was
	// given at creation.
	LogFormat              string
	MaxAggregationInterval int
	// FileFormat (plain-text | parquet), HiveCompatiblePartitions and
	// PerHourPartition are the DestinationOptions of s3 and file flow
	// logs.
	FileFormat               string
	HiveCompatiblePartitions bool
	PerHourPartition         bool
	Tags                     []Tag
	// FlowLogStatus is ACTIVE. DeliverLogsStatus is FAILED while an agent
	// reports failing to deliver it (DeliverLogsErrorMessage says why),
	// SUCCESS otherwise.
	FlowLogStatus           string
	DeliverLogsStatus       string
	DeliverLogsErrorMessage string

	seq int64
}

// CreateFlowLogsInput are CreateFlowLogs' parameters, named as the Query
// API names them. Zero values are the API's defaults.
type CreateFlowLogsInput struct {
	ResourceIDs  []string
	ResourceType string // VPC | Subnet | NetworkInterface
	TrafficType  string // ACCEPT | REJECT | ALL
	// LogDestinationType defaults to cloud-watch-logs.
	LogDestinationType       string
	LogDestination           string
	LogGroupName             string
	DeliverLogsPermissionArn string
	// LogFormat "" is the default format.
	LogFormat string
	// MaxAggregationInterval is 60 or 600 (0 means 600).
	MaxAggregationInterval   int
	FileFormat               string // plain-text (default) | parquet
	HiveCompatiblePartitions bool
	PerHourPartition         bool
	TagSpecifications        []TagSpecification
	// ClientToken makes a retry return the first call's answer.
	ClientToken string
	// DryRun validates and authorizes, then answers DryRunOperation.
	DryRun bool
}

// Unsuccessful is one resource (or flow log id) a call could not act on.
type Unsuccessful struct {
	ResourceID string `json:"resourceId"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

// CreateFlowLogsOutput is CreateFlowLogs' answer.
type CreateFlowLogsOutput struct {
	ClientToken  string         `json:"clientToken,omitempty"`
	FlowLogIDs   []string       `json:"flowLogIds"`
	Unsuccessful []Unsuccessful `json:"unsuccessful"`
}

// DescribeFlowLogsInput selects flow logs: by id (FlowLogIDs), by filter
// (flow-log-id, resource-id, traffic-type, log-destination-type,
// log-group-name, deliver-log-status, tag:KEY, tag-key), a page at a
// time (MaxResults 5–1000, 0 for all; NextToken from the previous page).
type DescribeFlowLogsInput struct {
	FlowLogIDs []string
	Filters    []Filter
	MaxResults int
	NextToken  string
}

// DescribeFlowLogsOutput is one page of flow logs, in creation order.
type DescribeFlowLogsOutput struct {
	FlowLogs  []FlowLog
	NextToken string
}

// newFlowLogID returns "fl-" and 17 random hex digits, as AWS's.
func newFlowLogID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return "fl-" + hex.EncodeToString(b[:])[:17]
}

// validated is a CreateFlowLogsInput checked and normalized.
type validated struct {
	in   CreateFlowLogsInput
	tags []Tag
}

var trafficTypes = []string{"ACCEPT", "REJECT", "ALL"}

// validate checks every parameter that does not need the store, with
// EC2's codes, and fills in defaults.
func (s *Service) validate(in CreateFlowLogsInput) (validated, error) {
	v := validated{in: in}
	if in.ResourceType == "" {
		return v, api.Errorf("MissingParameter", "The request must contain the parameter ResourceType")
	}
	switch in.ResourceType {
	case ResourceVPC, ResourceSubnet, ResourceNetworkInterface:
	default:
		return v, api.Errorf("InvalidParameterValue", "Value (%s) for parameter ResourceType is invalid. Valid values: VPC, Subnet, NetworkInterface.", in.ResourceType)
	}
	if len(in.ResourceIDs) == 0 {
		return v, api.Errorf("MissingParameter", "The request must contain the parameter ResourceId")
	}
	if len(in.ResourceIDs) > maxResourceIDs {
		return v, api.Errorf("InvalidParameterValue", "%d resource ids given: at most %d per request", len(in.ResourceIDs), maxResourceIDs)
	}
	for i, id := range in.ResourceIDs {
		if id == "" {
			return v, api.Errorf("InvalidParameterValue", "ResourceId.%d is empty", i+1)
		}
	}
	if in.TrafficType == "" {
		return v, api.Errorf("MissingParameter", "The request must contain the parameter TrafficType")
	}
	if !contains(trafficTypes, in.TrafficType) {
		return v, api.Errorf("InvalidParameterValue", "Value (%s) for parameter TrafficType is invalid. Valid values: ACCEPT, REJECT, ALL.", in.TrafficType)
	}
	if in.ClientToken != "" && (len(in.ClientToken) > 64 || !isASCII(in.ClientToken)) {
		return v, api.Errorf("InvalidParameterValue", "Value for parameter ClientToken is invalid: at most 64 ASCII characters")
	}
	switch in.MaxAggregationInterval {
	case 0:
		v.in.MaxAggregationInterval = 600
	case 60, 600:
	default:
		return v, api.Errorf("InvalidParameterValue", "Value (%d) for parameter MaxAggregationInterval is invalid. Valid values: 60, 600.", in.MaxAggregationInterval)
	}
	if in.LogFormat == "" {
		v.in.LogFormat = flow.DefaultFormatText
	} else if _, err := flow.ParseFormat(in.LogFormat); err != nil {
		return v, api.Errorf("InvalidParameter", "LogFormat is invalid: %v", err)
	}
	if err := s.validateDestination(&v.in); err != nil {
		return v, err
	}
	if in.DeliverLogsPermissionArn != "" && !isRoleARN(in.DeliverLogsPermissionArn) {
		return v, api.Errorf("InvalidParameterValue", "Value (%s) for parameter DeliverLogsPermissionArn is invalid: want an IAM role ARN arn:aws:iam::ACCOUNT:role/NAME", in.DeliverLogsPermissionArn)
	}
	for i, ts := range in.TagSpecifications {
		if ts.ResourceType != "vpc-flow-log" {
			return v, api.Errorf("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation: TagSpecification.%d.ResourceType must be vpc-flow-log", ts.ResourceType, i+1)
		}
		for _, t := range ts.Tags {
			if err := checkTag(t); err != nil {
				return v, err
			}
			for j, old := range v.tags {
				if old.Key == t.Key {
					v.tags = append(v.tags[:j], v.tags[j+1:]...)
					break
				}
			}
			v.tags = append(v.tags, t)
		}
	}
	if len(v.tags) > maxTags {
		return v, api.Errorf("TagLimitExceeded", "%d tags given: a flow log has at most %d", len(v.tags), maxTags)
	}
	return v, nil
}

func checkTag(t Tag) error {
	switch {
	case t.Key == "":
		return api.Errorf("InvalidParameterValue", "Tag keys must not be empty")
	case len(t.Key) > 128:
		return api.Errorf("InvalidParameterValue", "Tag key %.20q… is longer than 128 characters", t.Key)
	case len(t.Value) > 256:
		return api.Errorf("InvalidParameterValue", "The value of tag %q is longer than 256 characters", t.Key)
	case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
		return api.Errorf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use: %q", t.Key)
	}
	return nil
}

// validateDestination checks the destination of in by its type and
// normalizes it: a cloud-watch-logs flow log gets both its group name
// and its ARN.
func (s *Service) validateDestination(in *CreateFlowLogsInput) error {
	if in.LogDestinationType == "" {
		in.LogDestinationType = DestCloudWatchLogs
	}
	objects := in.LogDestinationType == DestS3 || in.LogDestinationType == DestFile
	if !objects && (in.FileFormat != "" || in.HiveCompatiblePartitions || in.PerHourPartition) {
		return api.Errorf("InvalidParameter", "DestinationOptions apply to the s3 and file destination types only, not %s", in.LogDestinationType)
	}
	if objects {
		switch in.FileFormat {
		case "":
			in.FileFormat = "plain-text"
		case "plain-text", "parquet":
		default:
			return api.Errorf("InvalidParameterValue", "Value (%s) for parameter DestinationOptions.FileFormat is invalid. Valid values: plain-text, parquet.", in.FileFormat)
		}
	}
	if in.LogDestinationType != DestCloudWatchLogs && in.LogGroupName != "" {
		return api.Errorf("InvalidParameter", "LogGroupName applies to the cloud-watch-logs destination type only; for %s give LogDestination", in.LogDestinationType)
	}
	if in.LogDestinationType != DestCloudWatchLogs && in.LogDestinationType != DestFirehose && in.DeliverLogsPermissionArn != "" {
		return api.Errorf("InvalidParameter", "DeliverLogsPermissionArn is not applicable for the %s destination type", in.LogDestinationType)
	}
	if in.LogDestinationType != DestCloudWatchLogs && in.LogDestination == "" {
		return api.Errorf("MissingParameter", "The request must contain the parameter LogDestination for the %s destination type", in.LogDestinationType)
	}
	switch in.LogDestinationType {
	case DestCloudWatchLogs:
		if in.LogGroupName != "" && in.LogDestination != "" {
			return api.Errorf("InvalidParameter", "Please only provide LogGroupName or only provide LogDestination.")
		}
		if in.LogGroupName == "" && in.LogDestination == "" {
			return api.Errorf("MissingParameter", "The request must contain the parameter LogGroupName or LogDestination for the cloud-watch-logs destination type")
		}
		if in.DeliverLogsPermissionArn == "" {
			return api.Errorf("InvalidParameter", "DeliverLogsPermissionArn is required for the cloud-watch-logs destination type")
		}
		if in.LogDestination != "" {
			group, err := logGroupFromARN(in.LogDestination)
			if err != nil {
				return err
			}
			in.LogGroupName = group
		} else {
			if err := checkLogGroupName(in.LogGroupName); err != nil {
				return err
			}
			in.LogDestination = "arn:aws:logs:" + s.opts.Region + ":" + s.opts.AccountID + ":log-group:" + in.LogGroupName
		}
	case DestS3:
		rest, ok := strings.CutPrefix(in.LogDestination, "arn:aws:s3:::")
		bucket, prefix, _ := strings.Cut(rest, "/")
		if !ok || !validBucket(bucket) {
			return api.Errorf("InvalidParameter", "LogDestination %q is not an S3 ARN: want arn:aws:s3:::bucket or arn:aws:s3:::bucket/prefix", in.LogDestination)
		}
		if strings.HasPrefix(prefix, "AWSLogs") {
			return api.Errorf("InvalidParameter", "LogDestination %q: the prefix must not start with AWSLogs, which flow logs add themselves", in.LogDestination)
		}
	case DestFirehose:
		if !isFirehoseARN(in.LogDestination) {
			return api.Errorf("InvalidParameter", "LogDestination %q is not a Kinesis Data Firehose ARN: want arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME", in.LogDestination)
		}
	case DestFile:
		p := in.LogDestination
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
			return api.Errorf("InvalidParameter", "LogDestination %q is not an absolute, clean path (the directory on every agent's host, e.g. /var/log/flowlog)", p)
		}
	case DestKafka:
		kind, loc, err := sink.ParseDestination(in.LogDestination)
		if err != nil || kind != sink.DestinationKafka {
			return api.Errorf("InvalidParameter", "LogDestination %q is not a Kafka URL: want kafka://host:port[,host:port]/topic", in.LogDestination)
		}
		// The query's TLS and SASL settings; credentials in the URL
		// are refused without being repeated.
		if _, err := kafka.ParseTarget(loc); err != nil {
			return api.Errorf("InvalidParameter", "LogDestination: %v", err)
		}
	default:
		return api.Errorf("InvalidParameterValue", "Value (%s) for parameter LogDestinationType is invalid. Valid values: cloud-watch-logs, s3, kinesis-data-firehose, file, kafka.", in.LogDestinationType)
	}
	return nil
}

func logGroupFromARN(arn string) (string, error) {
	// arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "logs" || parts[5] != "log-group" {
		return "", api.Errorf("InvalidParameter", "LogDestination %q is not a CloudWatch Logs log group ARN: want arn:aws:logs:REGION:ACCOUNT:log-group:NAME", arn)
	}
	name := strings.TrimSuffix(parts[6], ":*")
	if err := checkLogGroupName(name); err != nil {
		return "", err
	}
	return name, nil
}

func checkLogGroupName(name string) error {
	if name == "" || len(name) > 512 {
		return api.Errorf("InvalidParameterValue", "Log group name %q must be 1 to 512 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-/.#", c)) {
			return api.Errorf("InvalidParameterValue", "Log group name %q has the character %q: allowed are a-z, A-Z, 0-9, '_', '-', '/', '.' and '#'", name, c)
		}
	}
	return nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isFirehoseARN(s string) bool {
	parts := strings.SplitN(s, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && strings.HasPrefix(parts[1], "aws") && parts[2] == "firehose" &&
		strings.HasPrefix(parts[5], "deliverystream/") && len(parts[5]) > len("deliverystream/")
}

func isRoleARN(s string) bool {
	parts := strings.SplitN(s, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && strings.HasPrefix(parts[1], "aws") && parts[2] == "iam" &&
		strings.HasPrefix(parts[5], "role/") && len(parts[5]) > len("role/")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestHash identifies a create request's parameters, so a client
// token reused with other parameters is told apart from a retry.
func requestHash(v validated) string {
	in := v.in
	in.ClientToken, in.DryRun, in.TagSpecifications = "", false, nil
	b, _ := json.Marshal(struct {
		In   CreateFlowLogsInput
		Tags []Tag
	}{in, v.tags})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// resourceKinds maps a ResourceType to its id prefix, the inventory
// table that lists it, and its not-found error.
func resourceKind(rt string) (prefix, table, column, code, noun string) {
	switch rt {
	case ResourceVPC:
		return "vpc-", "ec2_vpcs", "vpc_id", "InvalidVpcID.NotFound", "vpc"
	case ResourceSubnet:
		return "subnet-", "ec2_subnets", "subnet_id", "InvalidSubnetID.NotFound", "subnet"
	default:
		return "eni-", "ec2_interfaces", "eni_id", "InvalidNetworkInterfaceID.NotFound", "networkInterface"
	}
}

// CreateFlowLogs creates a flow log for each resource of in. A resource
// that is not in the inventory, already has a flow log to the same
// destination, or is at its limit is reported in Unsuccessful; the
// others are created, all in one transaction. call authorizes
// ec2:CreateFlowLogs on the resources and iam:PassRole on
// DeliverLogsPermissionArn.
func (s *Service) CreateFlowLogs(ctx context.Context, call *api.Call, in CreateFlowLogsInput) (CreateFlowLogsOutput, error) {
	v, err := s.validate(in)
	if err != nil {
		return CreateFlowLogsOutput{}, err
	}
	if call != nil {
		arns := make([]string, len(in.ResourceIDs))
		for i, id := range in.ResourceIDs {
			arns[i] = s.resourceARN(in.ResourceType, id)
		}
		if err := call.Authorize(ctx, "ec2:CreateFlowLogs", arns...); err != nil {
			return CreateFlowLogsOutput{}, err
		}
		if in.DeliverLogsPermissionArn != "" {
			if err := call.Authorize(ctx, "iam:PassRole", in.DeliverLogsPermissionArn); err != nil {
				return CreateFlowLogsOutput{}, err
			}
		}
	}
	if in.DryRun {
		return CreateFlowLogsOutput{}, errDryRun()
	}
	hash := requestHash(v)
	var out CreateFlowLogsOutput
	created := false
	err = api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		out, created = CreateFlowLogsOutput{}, false
		if in.ClientToken != "" {
			// Forget expired tokens as new ones come: the table stays
			// bounded by a day of creates.
			if _, err := tx.ExecContext(ctx, `DELETE FROM ec2_client_tokens WHERE created_ms < ?`, s.opts.Now().Add(-ClientTokenTTL).UnixMilli()); err != nil {
				return fmt.Errorf("expire client tokens: %w", err)
			}
			var oldHash, resp string
			err := tx.QueryRowContext(ctx, `SELECT request_hash, response FROM ec2_client_tokens WHERE token = ?`, in.ClientToken).Scan(&oldHash, &resp)
			switch {
			case err == nil:
				if oldHash != hash {
					return api.Errorf("IdempotentParameterMismatch", "The client token %s was used before with different parameters", in.ClientToken)
				}
				return json.Unmarshal([]byte(resp), &out)
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("read client token: %w", err)
			}
		}
		var err error
		out, err = s.createTx(ctx, tx, v)
		if err != nil {
			return err
		}
		out.ClientToken = in.ClientToken
		created = len(out.FlowLogIDs) > 0
		if in.ClientToken != "" {
			resp, _ := json.Marshal(out)
			if _, err := tx.ExecContext(ctx, `INSERT INTO ec2_client_tokens(token, request_hash, response, created_ms) VALUES(?,?,?,?)`,
				in.ClientToken, hash, string(resp), s.opts.Now().UnixMilli()); err != nil {
				return fmt.Errorf("store client token: %w", err)
			}
		}
		if created {
			return bumpRevision(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return CreateFlowLogsOutput{}, err
	}
	if created {
		s.notify()
		s.log.Info("flow logs created", "ids", out.FlowLogIDs, "resource-type", in.ResourceType, "destination-type", v.in.LogDestinationType)
	}
	return out, nil
}

func (s *Service) createTx(ctx context.Context, tx *sql.Tx, v validated) (CreateFlowLogsOutput, error) {
	in := v.in
	out := CreateFlowLogsOutput{FlowLogIDs: []string{}, Unsuccessful: []Unsuccessful{}}
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM ec2_flow_logs`).Scan(&total); err != nil {
		return out, fmt.Errorf("count flow logs: %w", err)
	}
	prefix, table, column, notFound, noun := resourceKind(in.ResourceType)
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	for _, rid := range in.ResourceIDs {
		fail := func(code, format string, args ...any) {
			out.Unsuccessful = append(out.Unsuccessful, Unsuccessful{ResourceID: rid, Code: code, Message: fmt.Sprintf(format, args...)})
		}
		if !strings.HasPrefix(rid, prefix) {
			fail(notFound, "The %s ID '%s' does not exist", noun, rid)
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE `+column+` = ?`, rid).Scan(&n); err != nil {
			return out, fmt.Errorf("look up %s: %w", rid, err)
		}
		if n == 0 {
			fail(notFound, "The %s ID '%s' does not exist", noun, rid)
			continue
		}
		var same, onResource int
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(traffic_type = ? AND dest_type = ? AND dest = ?), 0)
			FROM ec2_flow_logs WHERE resource_id = ?`, in.TrafficType, in.LogDestinationType, in.LogDestination, rid).Scan(&onResource, &same); err != nil {
			return out, fmt.Errorf("look up flow logs of %s: %w", rid, err)
		}
		if same > 0 {
			fail("FlowLogAlreadyExists", "Error. There is an existing Flow Log with the same configuration and log destination.")
			continue
		}
		if onResource >= s.opts.MaxFlowLogsPerResource {
			fail("FlowLogsLimitExceeded", "%s already has %d flow logs, the most a resource may have", rid, onResource)
			continue
		}
		if total >= s.opts.MaxFlowLogs {
			fail("FlowLogsLimitExceeded", "The server has %d flow logs, the most it keeps (max-flow-logs)", total)
			continue
		}
		id := newFlowLogID()
		if _, err := tx.ExecContext(ctx, `INSERT INTO ec2_flow_logs(id, created_ms, resource_id, resource_type, traffic_type, dest_type, dest,
			log_group, role_arn, log_format, max_aggregation, file_format, hive, per_hour, client_token) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			id, now.UnixMilli(), rid, in.ResourceType, in.TrafficType, in.LogDestinationType, in.LogDestination,
			in.LogGroupName, in.DeliverLogsPermissionArn, in.LogFormat, in.MaxAggregationInterval, in.FileFormat,
			in.HiveCompatiblePartitions, in.PerHourPartition, in.ClientToken); err != nil {
			return out, fmt.Errorf("insert flow log %s: %w", id, err)
		}
		for _, t := range v.tags {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ec2_flow_log_tags(flow_log_id, key, value) VALUES(?,?,?)`, id, t.Key, t.Value); err != nil {
				return out, fmt.Errorf("insert tag of flow log %s: %w", id, err)
			}
		}
		total++
		out.FlowLogIDs = append(out.FlowLogIDs, id)
	}
	return out, nil
}

// DeleteFlowLogs deletes the flow logs ids; unknown ids come back in
// unsuccessful (InvalidFlowLogId.NotFound), the others are deleted in one
// transaction. call authorizes ec2:DeleteFlowLogs on them.
func (s *Service) DeleteFlowLogs(ctx context.Context, call *api.Call, ids []string) (unsuccessful []Unsuccessful, err error) {
	if len(ids) == 0 {
		return nil, api.Errorf("MissingParameter", "The request must contain the parameter FlowLogId")
	}
	if len(ids) > maxResourceIDs {
		return nil, api.Errorf("InvalidParameterValue", "%d flow log ids given: at most %d per request", len(ids), maxResourceIDs)
	}
	if call != nil {
		arns := make([]string, len(ids))
		for i, id := range ids {
			arns[i] = s.arn("vpc-flow-log", id)
		}
		if err := call.Authorize(ctx, "ec2:DeleteFlowLogs", arns...); err != nil {
			return nil, err
		}
	}
	deleted := 0
	err = api.InTx(ctx, s.db, func(tx *sql.Tx) error {
		unsuccessful, deleted = []Unsuccessful{}, 0
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `DELETE FROM ec2_flow_logs WHERE id = ?`, id)
			if err != nil {
				return fmt.Errorf("delete flow log %s: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				unsuccessful = append(unsuccessful, Unsuccessful{ResourceID: id, Code: "InvalidFlowLogId.NotFound",
					Message: fmt.Sprintf("These flow log ids in the input list are not found: [TotalCount: 1] %s", id)})
				continue
			}
			deleted++
		}
		if deleted > 0 {
			return bumpRevision(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if deleted > 0 {
		s.notify()
		s.log.Info("flow logs deleted", "count", deleted)
	}
	return unsuccessful, nil
}

// pageToken is an opaque position: the seq (or id) of the last item
// returned. Items created later sort after it, so concurrent creates
// never shift a listing.
func encodeToken(pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + pos))
}

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	pos, ok := strings.CutPrefix(string(b), "v1:")
	if err != nil || !ok {
		return "", api.Errorf("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")
	}
	return pos, nil
}

// checkMaxResults applies EC2's bounds (5 to 1000).
func checkMaxResults(n int) error {
	if n != 0 && (n < 5 || n > 1000) {
		return api.Errorf("InvalidParameterValue", "Value (%d) for parameter MaxResults is invalid. Expecting a value between 5 and 1000.", n)
	}
	return nil
}

// flowLogFields answers DescribeFlowLogs' filters for fl.
func flowLogFields(fl *FlowLog) fieldsFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "flow-log-id":
			return []string{fl.ID}, true
		case "resource-id":
			return []string{fl.ResourceID}, true
		case "traffic-type":
			return []string{fl.TrafficType}, true
		case "log-destination-type":
			return []string{fl.LogDestinationType}, true
		case "log-group-name":
			return []string{fl.LogGroupName}, true
		case "deliver-log-status":
			return []string{fl.DeliverLogsStatus}, true
		}
		return tagValues(name, fl.Tags)
	}
}

// DescribeFlowLogs returns the flow logs in, a page at a time in creation
// order. Unknown ids are not an error (EC2 answers an empty set).
func (s *Service) DescribeFlowLogs(ctx context.Context, in DescribeFlowLogsInput) (DescribeFlowLogsOutput, error) {
	if err := checkMaxResults(in.MaxResults); err != nil {
		return DescribeFlowLogsOutput{}, err
	}
	if err := checkFilters(in.Filters, flowLogFields(&FlowLog{})); err != nil {
		return DescribeFlowLogsOutput{}, err
	}
	var after int64
	if in.NextToken != "" {
		pos, err := decodeToken(in.NextToken)
		if err != nil {
			return DescribeFlowLogsOutput{}, err
		}
		if after, err = strconv.ParseInt(pos, 10, 64); err != nil {
			return DescribeFlowLogsOutput{}, api.Errorf("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")
		}
	}
	limit := 0
	if len(in.Filters) == 0 && in.MaxResults > 0 {
		limit = in.MaxResults + 1 // one more tells whether a next page exists
	}
	all, err := s.loadFlowLogs(ctx, after, in.FlowLogIDs, limit)
	if err != nil {
		return DescribeFlowLogsOutput{}, err
	}
	out := DescribeFlowLogsOutput{FlowLogs: []FlowLog{}}
	for i := range all {
		ok, err := matches(in.Filters, flowLogFields(&all[i]))
		if err != nil {
			return DescribeFlowLogsOutput{}, err
		}
		if !ok {
			continue
		}
		if in.MaxResults > 0 && len(out.FlowLogs) == in.MaxResults {
			out.NextToken = encodeToken(strconv.FormatInt(out.FlowLogs[len(out.FlowLogs)-1].seq, 10))
			break
		}
		out.FlowLogs = append(out.FlowLogs, all[i])
	}
	return out, nil
}

// loadFlowLogs reads the flow logs after seq (restricted to ids when
// given) with their tags and delivery status, in seq order. It reads in
// one read transaction, so a page is one consistent snapshot.
func (s *Service) loadFlowLogs(ctx context.Context, after int64, ids []string, limit int) ([]FlowLog, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read flow logs: %w", err)
	}
	defer tx.Rollback()
	q := `SELECT seq, id, created_ms, resource_id, resource_type, traffic_type, dest_type, dest, log_group, role_arn,
		log_format, max_aggregation, file_format, hive, per_hour FROM ec2_flow_logs WHERE seq > ?`
	args := []any{after}
	if len(ids) > 0 {
		q += ` AND id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	q += ` ORDER BY seq`
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read flow logs: %w", err)
	}
	var out []FlowLog
	byID := map[string]int{}
	for rows.Next() {
		var fl FlowLog
		var ms int64
		if err := rows.Scan(&fl.seq, &fl.ID, &ms, &fl.ResourceID, &fl.ResourceType, &fl.TrafficType, &fl.LogDestinationType,
			&fl.LogDestination, &fl.LogGroupName, &fl.DeliverLogsPermissionArn, &fl.LogFormat, &fl.MaxAggregationInterval,
			&fl.FileFormat, &fl.HiveCompatiblePartitions, &fl.PerHourPartition); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read flow logs: %w", err)
		}
		fl.CreationTime = time.UnixMilli(ms).UTC()
		fl.FlowLogStatus, fl.DeliverLogsStatus = "ACTIVE", "SUCCESS"
		byID[fl.ID] = len(out)
		out = append(out, fl)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read flow logs: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	rows, err = tx.QueryContext(ctx, `SELECT t.flow_log_id, t.key, t.value FROM ec2_flow_log_tags t
		JOIN ec2_flow_logs f ON f.id = t.flow_log_id WHERE f.seq > ? AND f.seq <= ? ORDER BY t.flow_log_id, t.rowid`, after, out[len(out)-1].seq)
	if err != nil {
		return nil, fmt.Errorf("read flow log tags: %w", err)
	}
	for rows.Next() {
		var id string
		var t Tag
		if err := rows.Scan(&id, &t.Key, &t.Value); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read flow log tags: %w", err)
		}
		if i, ok := byID[id]; ok {
			out[i].Tags = append(out[i].Tags, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read flow log tags: %w", err)
	}
	// A flow log fails while any agent reports failing it; the earliest
	// failing agent (by id) gives the message, so the answer is stable.
	// A report older than StatusTTL no longer counts: agents report every
	// few seconds, so it is from an agent that is gone.
	rows, err = tx.QueryContext(ctx, `SELECT flow_log_id, message FROM ec2_flow_log_status WHERE status = 'FAILED' AND reported_ms >= ?
		ORDER BY flow_log_id, agent_id DESC`, s.opts.Now().Add(-StatusTTL).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read delivery status: %w", err)
	}
	for rows.Next() {
		var id, msg string
		if err := rows.Scan(&id, &msg); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read delivery status: %w", err)
		}
		if i, ok := byID[id]; ok {
			out[i].DeliverLogsStatus, out[i].DeliverLogsErrorMessage = "FAILED", msg
		}
	}
	rows.Close()
	return out, rows.Err()
}
