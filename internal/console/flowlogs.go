package console

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// fieldInfo is one field of the format builder.
type fieldInfo struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Meaning string `json:"meaning"`
	Default bool   `json:"default"`
}

// fields serves the field table of flow.Fields, so the format builder
// never has its own copy.
func (h *Handler) fields(w http.ResponseWriter, _ *http.Request, _ *session) {
	def := flow.DefaultFormat()
	out := struct {
		Default string      `json:"defaultFormat"`
		Fields  []fieldInfo `json:"fields"`
	}{Default: flow.DefaultFormatText}
	for _, f := range flow.Fields {
		out.Fields = append(out.Fields, fieldInfo{Name: f.Name, Version: f.Version, Meaning: f.Meaning, Default: def.Has(f.ID)})
	}
	writeJSON(w, http.StatusOK, out)
}

// sampleValues are the values of the preview's sample record, as a
// record line would hold them. Fields not listed have no value ("-").
var sampleValues = map[flow.FieldID]string{
	flow.FieldInterfaceID:   "eni-0a1b2c3d4e5f60718",
	flow.FieldSrcAddr:       "10.0.1.5",
	flow.FieldDstAddr:       "10.0.2.7",
	flow.FieldSrcPort:       "49152",
	flow.FieldDstPort:       "443",
	flow.FieldProtocol:      "6",
	flow.FieldPackets:       "12",
	flow.FieldBytes:         "8400",
	flow.FieldAction:        "ACCEPT",
	flow.FieldLogStatus:     "OK",
	flow.FieldVPCID:         "vpc-0a1b2c3d",
	flow.FieldSubnetID:      "subnet-0a1b2c3d",
	flow.FieldInstanceID:    "i-0a1b2c3d4e5f60718",
	flow.FieldTCPFlags:      "19",
	flow.FieldType:          "IPv4",
	flow.FieldPktSrcAddr:    "10.0.1.5",
	flow.FieldPktDstAddr:    "10.0.2.7",
	flow.FieldAZID:          "use1-az1",
	flow.FieldFlowDirection: "egress",
	flow.FieldTrafficPath:   "1",
}

// formatPreview validates a log format with flow.ParseFormat, the parser
// CreateFlowLogs uses, and words a refusal as CreateFlowLogs does; it
// renders a sample record in the format.
func (h *Handler) formatPreview(w http.ResponseWriter, r *http.Request, _ *session) {
	text := r.URL.Query().Get("format")
	if strings.TrimSpace(text) == "" {
		text = flow.DefaultFormatText
	}
	f, err := flow.ParseFormat(text)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "code": "InvalidParameter", "message": "LogFormat is invalid: " + err.Error()})
		return
	}
	var rec flow.Record
	now := h.opts.Now().Unix()
	vals := map[flow.FieldID]string{
		flow.FieldVersion:   strconv.Itoa(f.Version()),
		flow.FieldAccountID: h.opts.AccountID,
		flow.FieldRegion:    h.opts.Region,
		flow.FieldStart:     strconv.FormatInt(now-now%60-60, 10),
		flow.FieldEnd:       strconv.FormatInt(now-now%60-2, 10),
	}
	for id, v := range sampleValues {
		vals[id] = v
	}
	for id, v := range vals {
		if err := rec.SetField(id, []byte(v)); err != nil {
			h.writeAPIError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "format": f.String(), "version": f.Version(),
		"header": f.Header(), "sample": string(f.Append(nil, &rec))})
}

// listFlowLogs serves the flow logs, filtered by the query's resource,
// traffic, destination type, status and free text (q: any id, destination
// or tag).
func (h *Handler) listFlowLogs(w http.ResponseWriter, r *http.Request, s *session) {
	call := h.newCall(r, s, "ec2", "DescribeFlowLogs")
	if err := h.authorize(r.Context(), call, "ec2:DescribeFlowLogs"); err != nil {
		h.writeAPIError(w, err)
		return
	}
	all, err := h.allFlowLogs(r.Context())
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	q := r.URL.Query()
	resource, traffic, dest, status := q.Get("resource"), q.Get("trafficType"), q.Get("destinationType"), q.Get("status")
	text := strings.ToLower(strings.TrimSpace(q.Get("q")))
	out := []FlowLog{}
	for _, fl := range all {
		if resource != "" && fl.ResourceID != resource ||
			traffic != "" && fl.TrafficType != traffic ||
			dest != "" && fl.DestinationType != dest ||
			status != "" && fl.DeliverStatus != status {
			continue
		}
		if text != "" && !flowLogMatches(fl, text) {
			continue
		}
		out = append(out, fl)
	}
	slices.SortFunc(out, func(a, b FlowLog) int { return b.CreationTime.Compare(a.CreationTime) })
	writeJSON(w, http.StatusOK, map[string]any{"flowLogs": out, "defaultFormat": flow.DefaultFormatText})
}

func flowLogMatches(fl FlowLog, text string) bool {
	hay := []string{fl.ID, fl.ResourceID, fl.Destination, fl.LogGroupName, fl.LogFormat}
	for _, t := range fl.Tags {
		hay = append(hay, t.Key, t.Value)
	}
	for _, s := range hay {
		if strings.Contains(strings.ToLower(s), text) {
			return true
		}
	}
	return false
}

// createFlowLogs creates flow logs from the create form, through the
// service's CreateFlowLogs: the API's validation, codes and messages.
func (h *Handler) createFlowLogs(w http.ResponseWriter, r *http.Request, s *session) {
	var in CreateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameter", "read the form: "+err.Error())
		return
	}
	// The service authorizes ec2:CreateFlowLogs on the resources (and
	// iam:PassRole on the role) through the call, as for the API.
	call := h.newCall(r, s, "ec2", "CreateFlowLogs")
	res, err := h.opts.FlowLogs.CreateFlowLogs(r.Context(), call, createInput(in))
	h.audit(call, nil, err)
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	if res.FlowLogIDs == nil {
		res.FlowLogIDs = []string{}
	}
	if res.Unsuccessful == nil {
		res.Unsuccessful = []ec2.Unsuccessful{}
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) deleteFlowLog(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	// The service authorizes ec2:DeleteFlowLogs on the flow log.
	call := h.newCall(r, s, "ec2", "DeleteFlowLogs")
	uns, err := h.opts.FlowLogs.DeleteFlowLogs(r.Context(), call, []string{id})
	h.audit(call, []string{h.arn("ec2", "vpc-flow-log/"+id)}, err)
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	if len(uns) > 0 {
		writeError(w, http.StatusNotFound, uns[0].Code, uns[0].Message)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": id})
}

// inventory serves the VPCs, subnets and interfaces the agents
// registered, each interface with the flow logs covering it.
func (h *Handler) inventory(w http.ResponseWriter, r *http.Request, s *session) {
	call := h.newCall(r, s, "ec2", "DescribeNetworkInterfaces")
	for _, a := range []string{"ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeNetworkInterfaces", "ec2:DescribeFlowLogs"} {
		if err := h.authorize(r.Context(), call, a); err != nil {
			h.writeAPIError(w, err)
			return
		}
	}
	raw, err := h.opts.FlowLogs.Inventory(r.Context())
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	inv := viewInventory(raw)
	slices.SortFunc(inv.VPCs, func(a, b VPC) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(inv.Subnets, func(a, b Subnet) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(inv.Interfaces, func(a, b Interface) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"inventory": inv, "now": h.opts.Now().UTC().Format(time.RFC3339)})
}

// apiError is an *api.Error for console-side refusals.
func apiError(status int, code, format string, args ...any) *api.Error {
	e := api.Errorf(code, format, args...)
	e.Status = status
	return e
}
