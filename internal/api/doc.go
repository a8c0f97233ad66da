// Package api owns the HTTP front of `flowlog serve`: it authenticates
// every request with AWS Signature Version 4, routes it by the signing
// name of its credential scope (ec2, logs, iam, flowlog) to the service
// that implements that API, and renders the service's answer or error in
// that API's wire protocol (EC2 Query XML, AWS Query XML, JSON 1.1). It
// also opens the server's embedded store (SQLite) that the services keep
// their tables in.
//
// The services themselves live in sub-packages (ec2, logs, iam, control);
// they see a request as a Call: the verified principal, the action and its
// parameters. Who may do what is decided by an Authorizer, so the simple
// "every configured key is an administrator" rule and IAM policies plug in
// the same way.
package api
