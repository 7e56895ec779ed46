package activities

import "github.com/keyturn/keyturn/secret"

// RotateWorkflowType is the registered type of the rotation workflow, and
// RotationWorkflowID the workflow ID of a secret's rotation. They are defined here, below
// workflows, because the incident's StopRotations finds rotations by both; workflows
// re-exports them (RotateWorkflowName, RotateWorkflowID) for everyone else.
const RotateWorkflowType = "Rotate"

// RotationWorkflowID is the workflow ID of a secret's rotation: one per secret, so two
// rotations of one secret never overlap, whoever starts them.
func RotationWorkflowID(id secret.ID) string { return "rotate/" + string(id) }
