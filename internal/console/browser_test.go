package console_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/aggregate"
	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
	"github.com/flowlog/flowlog/internal/capture/pcapfile"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/policy"
	"github.com/flowlog/flowlog/internal/sink"
)

// chromium finds Debian's chromium; without it the browser tests skip,
// except under CI, where they fail.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required under CI for the console's browser tests (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the console's browser tests need it")
	return ""
}

// browser is a headless chromium tab whose page errors fail the test.
type browser struct {
	t      *testing.T
	ctx    context.Context
	base   string
	shots  string
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T, base string) *browser {
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to sandbox as root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	b := &browser{t: t, ctx: ctx, base: base, shots: t.ArtifactDir()}
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	// Script errors and console.error calls of the pages fail the test.
	// Network errors (the 401 of a refused login) are expected.
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError && m.Source == "" {
				b.mu.Lock()
				b.errors = append(b.errors, m.String())
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.errors {
			t.Errorf("page error: %s", e)
		}
	})
	return b
}

// do runs steps in order, each within 15 s.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for i, step := range steps {
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		err := chromedp.Do(ctx, step)
		cancel()
		if err != nil {
			b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("%s, step %d: %v", what, i+1, err)
		}
	}
}

// login signs in with the test keys and waits for the console to be ready.
func (b *browser) login() {
	b.t.Helper()
	b.do("login",
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(chromedp.ID("access_key_id")),
		chromedp.SendKeys(chromedp.ID("access_key_id"), apitest.AccessKey),
		chromedp.SendKeys(chromedp.ID("secret_access_key"), apitest.SecretKey+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// shot saves a screenshot of the whole page as a test artifact and
// checks that it is a non-empty PNG.
func (b *browser) shot(name string) {
	b.t.Helper()
	// The viewport is grown to the page's height and the page given two
	// frames to paint before the capture: FullScreenshot alone left the
	// part below the first viewports unpainted on long pages.
	height, err := chromedp.Run(b.ctx, chromedp.Evaluate[int64](`Math.ceil(document.documentElement.scrollHeight)`))
	if err == nil {
		_, err = chromedp.Run(b.ctx, chromedp.EmulateViewport(1280, height))
	}
	if err == nil {
		_, err = chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
	}
	var buf []byte
	if err == nil {
		buf, err = chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	}
	if err == nil {
		_, err = chromedp.Run(b.ctx, chromedp.EmulateViewport(1280, 900))
	}
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if len(buf) < 1000 || !bytes.HasPrefix(buf, []byte("\x89PNG\r\n\x1a\n")) {
		b.t.Errorf("screenshot %s: %d bytes, not a PNG of a page", name, len(buf))
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		b.t.Error(err)
	}
	// Every control has a label, every button a name, every chart a title.
	if bad, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[
		...[...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter(el => !el.labels.length && !el.getAttribute('aria-label')).map(el => 'unlabelled ' + el.outerHTML.slice(0, 80)),
		...[...document.querySelectorAll('button, a[href]')].filter(el => !el.textContent.trim() && !el.getAttribute('aria-label')).map(el => 'nameless ' + el.outerHTML.slice(0, 80)),
		...[...document.querySelectorAll('svg')].filter(el => el.getAttribute('role') !== 'img' || !el.querySelector('title')).map(el => 'untitled chart ' + el.id),
	]`)); err != nil || len(bad) > 0 {
		b.t.Errorf("page %s: %v %q", name, err, bad)
	}
	// What a script bug leaves on a page.
	if bad, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.querySelector('main').innerText.match(/\[object \w+\]|\bnull\b|\bundefined\b|\bNaN\b/) || [''])[0]`)); bad != "" {
		b.t.Errorf("page %s shows %q", name, bad)
	}
}

// TestBrowser drives the console in headless chromium as a person would:
// a refused login, a login, a flow log created through the form (format
// builder, live preview, tags), its records (written by the project's
// pipeline from testdata/sample.pcap.gz), charts with NODATA and SKIPDATA
// windows, a TCP conversation, the inventory's coverage, and deletion with
// confirmation. Each page's screenshot is a test artifact.
func TestBrowser(t *testing.T) {
	e := startEnv(t)
	b := newBrowser(t, e.srv.URL)
	dest := filepath.Join(e.dir, "agent-flowlogs")

	// A wrong secret is refused with a message, and nothing opens.
	b.do("wrong login",
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(chromedp.ID("access_key_id")),
		chromedp.SendKeys(chromedp.ID("access_key_id"), apitest.AccessKey),
		chromedp.SendKeys(chromedp.ID("secret_access_key"), "not-the-secret"+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("login-error")))
	if msg := b.text("#login-error"); !strings.Contains(msg, "not right") {
		t.Errorf("wrong secret: %q", msg)
	}
	b.shot("01-login-refused")

	// The right one opens the flow logs page (the form is sent with the
	// keyboard; the refused page kept the key id, not the secret).
	b.do("login",
		chromedp.SendKeys(chromedp.ID("secret_access_key"), apitest.SecretKey+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
		chromedp.WaitVisible(chromedp.ID("flowlogs-empty")))
	b.shot("02-flowlogs-empty")

	// Create a flow log with the form: the VPC from the inventory, one
	// minute windows, a directory, a custom format with tcp-flags moved
	// before log-status, and a tag.
	b.do("open the create form",
		chromedp.Click(chromedp.ID("create-link")),
		chromedp.WaitVisible(chromedp.ID("create-form")),
		chromedp.WaitVisible(chromedp.ID("res-"+testVPC)),
		chromedp.Click(chromedp.ID("res-"+testVPC)),
		chromedp.Click(chromedp.ID("interval-60")),
		chromedp.SendKeys(chromedp.ID("destination"), dest),
		chromedp.Click(chromedp.ID("format-custom")),
		chromedp.WaitVisible(chromedp.ID("format-builder")),
		chromedp.Click(chromedp.ID("fld-tcp-flags")),
		chromedp.Click(chromedp.CSS(`button[aria-label="Move tcp-flags earlier"]`)),
		chromedp.Click(chromedp.ID("add-tag")),
		chromedp.SendKeys(chromedp.CSS(".tag-key"), "team"),
		chromedp.SendKeys(chromedp.CSS(".tag-value"), "network"),
		chromedp.Poll[chromedp.Void](`document.getElementById('preview-header').textContent.endsWith('action tcp-flags log-status')`))
	wantFormat := strings.Replace(flow.DefaultFormatText, "${action} ${log-status}", "${action} ${tcp-flags} ${log-status}", 1)
	if got := b.text("#format-text"); got != wantFormat {
		t.Errorf("format builder: %q, want %q", got, wantFormat)
	}
	if sample := b.text("#preview-sample"); len(strings.Fields(sample)) != 15 || !strings.Contains(sample, " ACCEPT 19 OK") {
		t.Errorf("preview sample: %q", sample)
	}
	b.shot("03-create-form")

	// Unchecking and checking a field moves it last; the buttons move it
	// back.
	b.do("move version last",
		chromedp.Click(chromedp.ID("fld-version")),
		chromedp.Click(chromedp.ID("fld-version")), // version again, now last: still valid
		chromedp.Poll[chromedp.Void](`document.getElementById('preview-header').textContent.endsWith('log-status version')`))

	b.do("move version back", chromedp.Evaluate[chromedp.Void](`(() => {
		const ups = () => [...document.querySelectorAll('#format-order li')].find(li => li.querySelector('code').textContent === 'version').querySelector('.up');
		for (let i = 0; i < 15; i++) { const u = ups(); if (!u || u.disabled) break; u.click(); }
	})()`))
	b.do("submit", chromedp.Poll[chromedp.Void](`document.getElementById('format-text').textContent.startsWith('${version} ${account-id}')`),
		chromedp.Click(chromedp.ID("create-submit")),
		chromedp.WaitVisible(chromedp.ID("flowlogs-table")))
	b.shot("04-flowlogs-list")

	out, err := e.ec2.DescribeFlowLogs(context.Background(), ec2.DescribeFlowLogsInput{})
	if err != nil || len(out.FlowLogs) != 1 {
		t.Fatalf("after the form: %d flow logs (%v)", len(out.FlowLogs), err)
	}
	fl := out.FlowLogs[0]
	if fl.ResourceID != testVPC || fl.LogDestinationType != "file" || fl.LogDestination != dest || fl.MaxAggregationInterval != 60 ||
		fl.LogFormat != wantFormat || len(fl.Tags) != 1 || fl.Tags[0].Key != "team" || fl.Tags[0].Value != "network" || fl.TrafficType != "ALL" {
		t.Fatalf("created %+v", fl)
	}
	if st := b.text("#status"); st != "Created "+fl.ID+"." {
		t.Errorf("status after create: %q", st)
	}
	if row := b.text(`#flowlogs-table tr[data-id="` + fl.ID + `"]`); !strings.Contains(row, testVPC) || !strings.Contains(row, dest) || !strings.Contains(row, "team=network") {
		t.Errorf("listed row: %q", row)
	}

	// The agent's part: the pipeline turns the capture into records in
	// the flow log's format, delivered to its directory.
	deliver(t, fl, dest)

	// Records: a page of the table, a filter, the CSV download.
	b.do("records",
		chromedp.Navigate(b.base+"/#/records/"+fl.ID),
		chromedp.WaitVisible(chromedp.CSS("#records-table tbody tr")))
	if cap := b.text("#records-table caption"); !strings.HasPrefix(cap, "Records 1–50") {
		t.Errorf("records caption: %q", cap)
	}
	b.shot("05-records")
	b.do("next page", chromedp.Click(chromedp.ID("next-page")), chromedp.Poll[chromedp.Void](`document.querySelector('#records-table caption')?.textContent.startsWith('Records 51–100')`))
	b.do("filter",
		chromedp.SendKeys(chromedp.ID("qb-where"), "protocol = udp and dstport = 53"),
		chromedp.Click(chromedp.ID("qb-apply")),
		chromedp.Poll[chromedp.Void](`location.hash.includes('where=') && document.querySelector('#records-table caption')?.textContent.includes(' of ')`))
	if bad := eval[int](b, `(() => { const cols = [...document.querySelectorAll('#records-table thead th')].map(th => th.textContent);
		const p = cols.indexOf('protocol'), d = cols.indexOf('dstport');
		return [...document.querySelectorAll('#records-table tbody tr')].filter(tr => tr.children[p].textContent !== '17' || tr.children[d].textContent !== '53').length; })()`); bad != 0 {
		t.Errorf("%d rows do not match the filter", bad)
	}
	csvText := eval[string](b, `fetch(document.getElementById('csv-download').href).then(r => r.text())`)
	lines := strings.Split(strings.TrimSpace(csvText), "\n")
	if len(lines) < 2 || lines[0] != strings.Join(strings.Fields(strings.NewReplacer("${", "", "}", "").Replace(wantFormat)), ",") {
		t.Errorf("csv download: %d lines, header %q", len(lines), lines[0])
	}

	// Charts: bars of accepted traffic, the NODATA gap and the SKIPDATA
	// windows on the time axis, top talkers.
	b.do("charts",
		chromedp.Navigate(b.base+"/#/charts/"+fl.ID),
		chromedp.WaitVisible(chromedp.CSS("#chart-bytes .bar rect")))
	for sel, min := range map[string]int{"#chart-bytes .bar rect.accept": 3, "#chart-packets .bar rect.accept": 3, "#chart-bytes .gap-nodata": 1,
		"#chart-bytes .gap-skipdata": 1, "#chart-talkers .hbar": 5} {
		if n := eval[int](b, `document.querySelectorAll('`+sel+`').length`); n < min {
			t.Errorf("%s: %d elements, want at least %d", sel, n, min)
		}
	}
	b.shot("06-charts")

	// Conversations, then one of them.
	b.do("conversations",
		chromedp.Navigate(b.base+"/#/connections/"+fl.ID),
		chromedp.WaitVisible(chromedp.CSS("#connections-table .conv-link")))
	b.shot("07-conversations")
	// Keyboard focus is visible: Tab from the filter onto the Apply button.
	b.do("tab", chromedp.Focus(chromedp.ID("qb-where")), chromedp.KeyEvent(kb.Tab))
	if f := eval[string](b, `document.activeElement.id + ' ' + getComputedStyle(document.activeElement).outlineStyle`); f != "qb-apply solid" {
		t.Errorf("focus after Tab: %q, want the Apply button with a visible outline", f)
	}
	// The first conversation whose handshake the records show, opened
	// with the keyboard.
	b.do("conversation",
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('#connections-table tbody tr')]
			.find(tr => tr.children[4].textContent === 'complete').querySelector('.conv-link').focus()`),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.ID("conversation-timeline")),
		chromedp.WaitVisible(chromedp.CSS("#conversation-timeline g.rec")))
	if v := b.text("#conversation-verdict"); !strings.Contains(v, "Verdict") || !strings.Contains(v, "Handshake") {
		t.Errorf("verdict card: %q", v)
	}
	if n := eval[int](b, `document.querySelectorAll('#conversation-timeline text.flag').length`); n == 0 {
		t.Error("the timeline shows no TCP flags")
	}
	b.shot("08-conversation")

	// The agent reports its delivery: failing now, with the end of the
	// last record it delivered.
	lastEnd := time.Date(2015, 1, 13, 13, 13, 29, 0, time.UTC)
	if err := e.ec2.ReportStatus(context.Background(), control.StatusReport{AgentID: "agent-1", FlowLogs: []control.FlowLogStatus{
		{FlowLogID: fl.ID, Status: "FAILED", Message: "write /var/log/flowlog: no space left on device", Records: 6383, LastRecordEnd: lastEnd}}}); err != nil {
		t.Fatal(err)
	}

	// Inventory: the interface is covered by the new flow log, and shows
	// its last record.
	b.do("inventory",
		chromedp.Navigate(b.base+"/#/inventory"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-id="`+testENI+`"]`)))
	if cov := b.text(`tr[data-id="` + testENI + `"] .coverage`); !strings.Contains(cov, fl.ID) {
		t.Errorf("coverage of %s: %q", testENI, cov)
	}
	if row := b.text(`tr[data-id="` + testENI + `"]`); !strings.Contains(row, "2015-01-13 13:13:29Z") {
		t.Errorf("last record of %s: %q", testENI, row)
	}
	b.shot("09-inventory")

	// Delete, confirming in the dialog with the keyboard.
	b.do("delete",
		chromedp.Navigate(b.base+"/#/flowlogs"),
		chromedp.WaitVisible(chromedp.CSS(`button[data-delete="`+fl.ID+`"]`)),
		chromedp.Click(chromedp.CSS(`button[data-delete="`+fl.ID+`"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	if row := b.text(`#flowlogs-table tr[data-id="` + fl.ID + `"]`); !strings.Contains(row, "FAILED") || !strings.Contains(row, "no space left on device") {
		t.Errorf("delivery status in the list: %q", row)
	}
	if msg := b.text("#confirm-msg"); !strings.Contains(msg, fl.ID) {
		t.Errorf("confirmation: %q", msg)
	}
	b.shot("10-delete-confirm")
	b.do("confirm",
		chromedp.Focus(chromedp.ID("confirm-ok")),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.ID("flowlogs-empty")))
	out, err = e.ec2.DescribeFlowLogs(context.Background(), ec2.DescribeFlowLogsInput{})
	if err != nil || len(out.FlowLogs) != 0 {
		t.Errorf("after delete: %d flow logs (%v)", len(out.FlowLogs), err)
	}
	b.shot("11-deleted")
	t.Logf("screenshots in %s", b.shots)
}

// deliver does what an agent covering the flow log does: the pipeline
// turns a capture into records in the flow log's format and window, and
// the directory destination writes them in the S3 layout. The capture is
// testdata/sample.pcap.gz followed by itself four minutes later, so
// windows without traffic (NODATA) lie between; the flow table holds 1,500
// flows at most, so busy windows lose records (SKIPDATA).
func deliver(t *testing.T, fl ec2.FlowLog, root string) {
	t.Helper()
	format, err := flow.ParseFormat(fl.LogFormat)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := sink.NewDir(sink.DirConfig{Root: root, Format: format,
		Layout: sink.Layout{AccountID: apitest.AccountID, Region: apitest.Region, FlowLogID: fl.ID}})
	if err != nil {
		t.Fatal(err)
	}
	st := runPipeline(t, fl, dir)
	if len(dir.Published()) == 0 {
		t.Fatalf("the pipeline published nothing: %+v", st)
	}
	t.Logf("pipeline: %+v; %d objects", st, len(dir.Published()))
}

// runPipeline runs the pipeline of an agent covering the flow log over
// the capture of deliver, into dest.
func runPipeline(t *testing.T, fl ec2.FlowLog, dest pipeline.Sink) pipeline.ReadStats {
	t.Helper()
	format, err := flow.ParseFormat(fl.LogFormat)
	if err != nil {
		t.Fatal(err)
	}
	capture := twice(t, "../../testdata/sample.pcap.gz", 9*time.Minute)
	inv, err := inventory.New(nil, inventory.Overrides{AccountID: apitest.AccountID, Region: apitest.Region, VPCID: testVPC, SubnetID: testSubnet,
		InstanceID: "i-0c0501e0a1b2c3d4e", InterfaceID: testENI})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pipeline.Read(context.Background(), bytes.NewReader(capture), "sample twice", pipeline.ReadConfig{
		Format: format, Aggregate: aggregate.Config{Interval: int64(fl.MaxAggregationInterval), MaxFlows: 1500},
		TrafficType: pipeline.TrafficType(fl.TrafficType), Exclusions: policy.DefaultExclusions(), Inventory: inv}, dest)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// twice returns the capture at path followed by its packets again, shift
// later.
func twice(t *testing.T, path string, shift time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *pcapfile.Writer
	for round := range 2 {
		r, err := pcapfile.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if w == nil {
			ifs := r.Interfaces()
			if w, err = pcapfile.NewWriter(&buf, ifs[0].LinkType, 65535, true); err != nil {
				t.Fatal(err)
			}
		}
		var p pcapfile.Packet
		for {
			err := r.Next(&p)
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatal(err)
			}
			if err := w.WritePacket(p.Timestamp+int64(round)*int64(shift), p.Data, p.OrigLen); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
	}
	return buf.Bytes()
}
