// A workflow's task tree on the execution view: nested lists of its tasks (sub-workflows as
// branches, a with-items task's items under it), each linking to its own execution view.

import { badge, formatTime, h, routeLink } from "./dom.js";

function when(label, iso) {
  return h(
    "span",
    { class: "task-time" },
    `${label} `,
    iso ? h("time", { datetime: iso }, formatTime(iso)) : "—",
  );
}

function taskLabel(node) {
  const name = node.name || node.action;
  return node.item_id === null ? name : `${name} item ${node.item_id}`;
}

function row(node, title) {
  return h(
    "div",
    { class: "task-row" },
    title,
    badge(node.status),
    h("code", { class: "task-action" }, node.action),
    when("started", node.start_timestamp),
    when("ended", node.end_timestamp),
  );
}

function moreItems(node, workflowId) {
  const query = new URLSearchParams({ parent: workflowId, task_execution: node.task_execution_id });
  return h(
    "p",
    { class: "task-more" },
    `${node.more} more ${node.more === 1 ? "item" : "items"} · `,
    h("a", { href: `#/executions?${query}` }, `all items of ${node.name}`),
  );
}

function branch(nodes, workflowId, label) {
  return h(
    "ul",
    { class: "task-tree", "aria-label": label },
    nodes.map((node) => taskItem(node, workflowId)),
  );
}

function taskItem(node, workflowId) {
  if (node.kind === "items") {
    const count = node.tasks.length + node.more;
    return h(
      "li",
      { class: "task task-items" },
      row(
        node,
        h(
          "span",
          { class: "task-name" },
          node.name,
          h("span", { class: "muted" }, ` · with items (${count})`),
        ),
      ),
      branch(node.tasks, workflowId, `Items of ${node.name}`),
      node.more > 0 ? moreItems(node, workflowId) : null,
    );
  }
  const label = taskLabel(node);
  return h(
    "li",
    { class: "task", dataset: { execution: node.id } },
    row(node, routeLink(["executions", node.id], label, { class: "task-name" })),
    node.tasks.length ? branch(node.tasks, node.id, `Tasks of ${label}`) : null,
  );
}

/** The tree of ``GET /ui/api/executions/<id>/tasks`` as nested lists. */
export function taskTree(tree) {
  if (!tree.tasks.length) {
    return h("p", { class: "empty" }, tree.workflow ? "No task has started." : "None.");
  }
  return [
    branch(tree.tasks, tree.id, tree.workflow ? "Task tree" : "Child executions"),
    tree.truncated
      ? h(
          "p",
          { class: "task-more" },
          `Showing the first ${tree.shown} executions. `,
          h(
            "a",
            { href: `#/executions?${new URLSearchParams({ parent: tree.id })}` },
            "All tasks of this workflow",
          ),
        )
      : null,
  ];
}

/** Every execution the tree shows, sub-workflows included (live events about them matter). */
export function treeExecutionIds(tree) {
  const found = new Set();
  const visit = (nodes) => {
    for (const node of nodes) {
      if (node.id) found.add(node.id);
      visit(node.tasks);
    }
  };
  visit(tree.tasks);
  return found;
}
