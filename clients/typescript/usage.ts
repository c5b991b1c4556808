// A tiny consumer of the types openapi-typescript generates from /openapi/v1.json: if the
// document drops or retypes what a client relies on, `tsc --noEmit` fails the CI run.
import type { components, paths } from "./generated/deviceops";

type Operation = components["schemas"]["OperationResponse"];
type OperationRequest = components["schemas"]["OperationRequest"];
type PutOperation = paths["/api/v1/inventory_device_operation/{id}/"]["put"];

// The seed's request, as the PUT takes it.
const seedRequest: OperationRequest = {
  operation_type: "maintenance",
  operational_status: "maintenance",
  status: "completed",
  device_id: "DEV-001",
  operator_id: "OP-456",
  started_at: "2024-01-15T10:00:00Z",
  completed_at: "2024-01-15T11:30:00Z",
  location: "Building A - Floor 2",
  assigned_user: "john.doe@company.com",
  configuration: { network_profile: "production", monitoring_enabled: true, alert_level: "standard" },
  next_maintenance: "2024-04-15T09:00:00Z",
};

const id: PutOperation["parameters"]["path"]["id"] = 123;

function summarize(operation: Operation): string {
  const history = operation.operational_history ?? [];
  return `${operation.id} ${operation.status} on ${operation.device_id} (${operation.operational_status}), ${history.length} history entries`;
}

export { seedRequest, id, summarize };
