package logs_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// childEnv names the store directory when the test binary runs as a
// server for TestKillDuringPuts.
const childEnv = "FLOWLOG_LOGS_TEST_SERVER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := apitest.ServeChild(dir, func(ctx context.Context, db *sql.DB) ([]api.Service, error) {
			svc, err := logs.New(ctx, db, logs.Options{AccountID: apitest.AccountID, Region: apitest.Region})
			return []api.Service{svc}, err
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// TestKillDuringPuts: a server killed (SIGKILL) while four clients put
// 1,000-event batches keeps every batch it acknowledged, and each batch
// entirely or not at all.
func TestKillDuringPuts(t *testing.T) {
	dir := t.TempDir()
	cmd, url := apitest.StartChild(t, childEnv, dir)
	client := cloudwatchlogs.NewFromConfig(aws.Config{
		Region:      apitest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(apitest.AccessKey, apitest.SecretKey, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *cloudwatchlogs.Options) { o.BaseEndpoint = aws.String(url) })
	ctx := context.Background()
	if _, err := client.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	const writers, batch = 4, 1000
	for w := range writers {
		if _, err := client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String(fmt.Sprintf("s%d", w))}); err != nil {
			t.Fatal(err)
		}
	}
	acked := apitest.PutUntilKilled(t, cmd, writers, func(w, c int) error {
		in := &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String(fmt.Sprintf("s%d", w))}
		now := time.Now().UnixMilli()
		for e := range batch {
			in.LogEvents = append(in.LogEvents, types.InputLogEvent{Timestamp: aws.Int64(now), Message: aws.String(fmt.Sprintf("%d/%d/%d", w, c, e))})
		}
		_, err := client.PutLogEvents(ctx, in)
		return err
	})

	// Read the store as a restarted server does.
	db, err := api.OpenDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := logs.New(ctx, db, logs.Options{}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT message FROM logs_events`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			t.Fatal(err)
		}
		stored[msg[:strings.LastIndexByte(msg, '/')]]++
	}
	rows.Close()
	for call, n := range stored {
		if n != batch {
			t.Errorf("call %s: %d of its %d events stored", call, n, batch)
		}
	}
	for call := range acked {
		if stored[call] != batch {
			t.Errorf("acknowledged call %s: %d events stored", call, stored[call])
		}
	}
	var streamBytes, groupBytes int64
	db.QueryRow(`SELECT sum(stored_bytes) FROM logs_streams`).Scan(&streamBytes)
	db.QueryRow(`SELECT stored_bytes FROM logs_groups`).Scan(&groupBytes)
	var eventBytes int64
	db.QueryRow(`SELECT sum(size) FROM logs_events`).Scan(&eventBytes)
	if streamBytes != eventBytes || groupBytes != eventBytes {
		t.Errorf("stored bytes: streams %d, group %d, events %d", streamBytes, groupBytes, eventBytes)
	}
	t.Logf("%d calls acknowledged, %d stored (%d in flight at the kill)", len(acked), len(stored), len(stored)-len(acked))
}
