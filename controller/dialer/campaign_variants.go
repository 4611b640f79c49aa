package dialer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/callgate/callgate/controller"
)

// Bounds of a campaign's A/B test settings.
const (
	minVariants          = 2
	maxVariants          = 10
	maxVariantWeight     = 1000
	maxConversions       = 20
	defaultVariantWeight = 1
)

// validateVariants checks a campaign's A/B test variants and conversion
// dispositions, gives variants without a weight the default one (equal
// shares) and lower-cases, sorts and deduplicates the dispositions. Returns
// EINVALID naming the field.
func validateVariants(c *controller.Campaign) error {
	if len(c.Variants) > 0 {
		if len(c.Variants) < minVariants || len(c.Variants) > maxVariants {
			return controller.FieldError("variants", "give %d to %d variants, or none", minVariants, maxVariants)
		}
		if c.FlowID != "" {
			return controller.FieldError("flow_id", "leave it out: with variants, each variant names its flow")
		}
		seen := map[string]int{}
		for i := range c.Variants {
			v, field := &c.Variants[i], fmt.Sprintf("variants[%d]", i)
			if !flowIDRE.MatchString(v.Name) {
				return controller.FieldError(field+".name", "must match %s", flowIDRE)
			}
			if j, dup := seen[v.Name]; dup {
				return controller.FieldError(field+".name", "variants[%d] has the same name", j)
			}
			seen[v.Name] = i
			if v.FlowID == "" {
				return controller.FieldError(field+".flow_id", "is required: the flow this variant's calls run")
			}
			if !flowIDRE.MatchString(v.FlowID) {
				return controller.FieldError(field+".flow_id", "must match %s", flowIDRE)
			}
			if v.Weight == 0 {
				v.Weight = defaultVariantWeight
			}
			if v.Weight < 1 || v.Weight > maxVariantWeight {
				return controller.FieldError(field+".weight", "must be between 1 and %d", maxVariantWeight)
			}
		}
	}
	if len(c.ConversionDispositions) > maxConversions {
		return controller.FieldError("conversion_dispositions", "give at most %d dispositions", maxConversions)
	}
	for i, d := range c.ConversionDispositions {
		d = strings.ToLower(d)
		if err := controller.CheckTags(nil, d); err != nil || d == "" {
			return controller.FieldError(fmt.Sprintf("conversion_dispositions[%d]", i), "not a disposition: 1 to 32 letters, digits or '_', from a letter")
		}
		c.ConversionDispositions[i] = d
	}
	slices.Sort(c.ConversionDispositions)
	c.ConversionDispositions = slices.Compact(c.ConversionDispositions)
	return nil
}

// conversionDispositions are the dispositions a campaign counts as
// conversions.
func conversionDispositions(c controller.Campaign) []string {
	if len(c.ConversionDispositions) == 0 {
		return slices.Clone(controller.DefaultConversionDispositions)
	}
	return c.ConversionDispositions
}
