/** FHIR R4 OperationOutcome: how intake answers FHIR callers about problems (and successes). */
export interface OutcomeIssue {
  severity?: 'fatal' | 'error' | 'warning' | 'information';
  /** FHIR issue-type code: invalid, structure, required, value, not-supported, forbidden, transient, too-costly, exception, informational... */
  code: string;
  diagnostics?: string;
  /** FHIRPath of the element at fault, e.g. Observation.status or Bundle.entry[2].resource.subject. */
  expression?: string[];
}

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  issue: Required<Pick<OutcomeIssue, 'severity' | 'code'>>[] & OutcomeIssue[];
}

export function operationOutcome(issues: OutcomeIssue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((i) => ({ severity: i.severity ?? 'error', ...i })),
  };
}
