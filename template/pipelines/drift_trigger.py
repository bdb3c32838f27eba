"""The drift alert's action: an Event Grid subscription that starts retraining on drift.

Azure ML's model monitor has no webhook action (its alert notification is e-mail only). A monitor
run that finds a signal over its threshold fails, and the workspace publishes a
`Microsoft.MachineLearningServices.RunStatusChanged` event. This module subscribes the
retraining trigger to exactly those events: a webhook (DRIFT_TRIGGER_URL, the HTTP trigger of
the Logic App or Function that dispatches the training workflow or queues the training
pipeline; see docs/cicd.md). `cicd.py monitor` creates or updates it where a monitor runs.
"""

from __future__ import annotations

RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
#: The run tag Azure ML sets on a monitor run whose signals breached their thresholds.
BREACHED_TAG = "data.RunTags.azureml_modelmonitor_threshold_breached"
SUBSCRIPTION_NAME = "model-drift-retrain"
TRIGGER_VARIABLE = "DRIFT_TRIGGER_URL"


def workspace_id(subscription_id: str, resource_group: str, workspace_name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{workspace_name}"
    )


def event_subscription(endpoint_url: str):
    """Only failed monitor runs that breached a threshold reach the webhook."""
    from azure.mgmt.eventgrid.models import (
        EventSubscription,
        EventSubscriptionFilter,
        StringContainsAdvancedFilter,
        StringInAdvancedFilter,
        WebHookEventSubscriptionDestination,
    )

    return EventSubscription(
        destination=WebHookEventSubscriptionDestination(endpoint_url=endpoint_url),
        filter=EventSubscriptionFilter(
            included_event_types=[RUN_STATUS_CHANGED],
            advanced_filters=[
                StringInAdvancedFilter(key="data.RunStatus", values=["Failed"]),
                StringContainsAdvancedFilter(
                    key=BREACHED_TAG, values=["violating metric thresholds"]
                ),
            ],
        ),
    )


def get_eventgrid_client(subscription_id: str):
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.eventgrid import EventGridManagementClient

    return EventGridManagementClient(DefaultAzureCredential(), subscription_id)


def wire(eventgrid_client, scope: str, endpoint_url: str) -> str:
    """Create or update the subscription on the workspace (a control-plane call)."""
    eventgrid_client.event_subscriptions.begin_create_or_update(
        scope=scope,
        event_subscription_name=SUBSCRIPTION_NAME,
        event_subscription_info=event_subscription(endpoint_url),
    ).result()
    return SUBSCRIPTION_NAME
