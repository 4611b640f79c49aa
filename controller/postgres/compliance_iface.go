package postgres

import "github.com/callgate/callgate/controller"

var _ controller.ComplianceStore = (*Store)(nil)
