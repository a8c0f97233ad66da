package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/flowlog/flowlog/flow"
	"github.com/spf13/cobra"
)

func newFormatCmd(io streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "format",
		Short: "Validate log formats and list the fields",
	}
	cmd.AddCommand(newFormatValidateCmd(io), newFormatFieldsCmd(io))
	return cmd
}

func checkOutput(output string) error {
	if output != "text" && output != "json" {
		return usageError{fmt.Errorf("--output %q: want text or json", output)}
	}
	return nil
}

func newFormatValidateCmd(io streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "validate '<format>'",
		Short: "Check a ${field} log format and print its version",
		Long: `Check a log format the way CreateFlowLogs does: space-separated ${field} tokens,
known fields only, no duplicates. Prints the record version (the highest version
among the fields) and the header line records in this format get.`,
		Example: `  flowlog format validate '${version} ${srcaddr} ${tcp-flags}'`,
		Args:    exactArgs(1, "one format (quote it)"),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			f, err := flow.ParseFormat(args[0])
			if err != nil {
				if output == "json" {
					_ = json.NewEncoder(io.out).Encode(map[string]any{"valid": false, "error": err.Error()})
				}
				return err
			}
			if output == "json" {
				names := make([]string, 0, f.Len())
				for _, id := range f.Fields() {
					names = append(names, id.String())
				}
				return json.NewEncoder(io.out).Encode(map[string]any{
					"valid": true, "version": f.Version(), "default": f.IsDefault(), "fields": names, "header": f.Header(),
				})
			}
			kind := "custom"
			if f.IsDefault() {
				kind = "default"
			}
			fmt.Fprintf(io.out, "valid %s format, version %d, %d fields\nheader: %s\n", kind, f.Version(), f.Len(), f.Header())
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output `format`: text or json")
	return cmd
}

func newFormatFieldsCmd(io streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "fields",
		Short: "List every field with the version that introduced it and its meaning",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if output == "json" {
				type field struct {
					Name    string `json:"name"`
					Version int    `json:"version"`
					Meaning string `json:"meaning"`
				}
				fields := make([]field, 0, len(flow.Fields))
				for _, f := range flow.Fields {
					fields = append(fields, field{f.Name, f.Version, f.Meaning})
				}
				return json.NewEncoder(io.out).Encode(fields)
			}
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FIELD\tVERSION\tMEANING")
			for _, f := range flow.Fields {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", f.Name, f.Version, f.Meaning)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output `format`: text or json")
	return cmd
}
