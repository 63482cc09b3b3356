// The one place that turns a job (as the jobs API gives it) into the reasons the page
// shows. When the engine's structured reason codes are stored with jobs (`job.reasons`, a
// list of {"code", "role", "message", ...facts}, rendered by the server as the jobs API
// renders them), they are shown as they come: the decision's (every role but "rejected")
// and, per alternative, the rejected one naming its site. Until then the engine's
// free-text explanation is shown with the code "text". Every other part of the page calls
// these two functions and nothing else.
"use strict";

window.cnReasons = {
  /** The decision's reasons: [{code, message, numbers}] (the engine's words, never parsed). */
  decision(job) {
    const x = job.explanation || {};
    const coded = Array.isArray(job.reasons) && job.reasons.length ? job.reasons : x.reasons;
    if (Array.isArray(coded)) {
      return coded.filter((r) => r.role !== "rejected")
        .map((r) => ({ code: r.code, message: r.message, numbers: r }));
    }
    const out = [];
    if (x.reason) out.push({ code: "text", message: x.reason, numbers: {} });
    if (x.executor) out.push({ code: "text", message: x.executor, numbers: {} });
    if (job.message && job.message !== x.reason) {
      out.push({ code: "text", message: job.message, numbers: {} });
    }
    return out;
  },

  /** The alternatives the placement beat: [{site_id, start_s, objective_cny, by_cny, code,
   * message}], ``by_cny`` how much worse each was on the objective (null if not priced). */
  alternatives(job) {
    const x = job.explanation || {};
    const chosen = x.breakdown ? x.breakdown.objective_cny : null;
    const rejected = (Array.isArray(job.reasons) ? job.reasons : []).filter((r) => r.role === "rejected");
    return (x.alternatives || []).map((a) => {
      const own = Array.isArray(a.reasons) && a.reasons.length ? a.reasons[0] : null;
      const first = own || rejected.find((r) => r.site_id === a.site_id && (r.start_s === undefined || r.start_s === a.start_s))
        || rejected.find((r) => r.site_id === a.site_id) || null;
      const priced = a.objective_cny !== null && a.objective_cny !== undefined;
      return {
        site_id: a.site_id,
        start_s: a.start_s,
        objective_cny: priced ? a.objective_cny : null,
        by_cny: priced && chosen !== null ? a.objective_cny - chosen : null,
        code: first ? first.code : (a.code || "text"),
        message: first ? first.message : (a.message || a.reason || ""),
      };
    });
  },
};
