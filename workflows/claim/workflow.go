package claim

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// ClaimWorkflow carries one claim: received → verifying → auto_approved or
// in_review; reviewers decide through Updates (approve, with a second approver
// above the four-eyes threshold; reject; request info, answered by the merchant
// or closed by a durable deadline timer); a rejection may be appealed within
// the program's appeal window (a durable timer), after which the claim closes.
//
// Workflows recorded before verification existed (version DefaultVersion of
// versionVerification) replay their first steps unchanged and load the review
// context lazily when the first decision arrives.
func ClaimWorkflow(ctx workflow.Context, in Input) error {
	w := &claimWorkflow{state: State{ClaimID: in.ClaimID, Status: models.StatusReceived}}
	if err := w.setup(ctx); err != nil {
		return err
	}
	return w.run(ctx)
}

// ReviewState is the review part of the query state: ids, amounts and dates only.
type ReviewState struct {
	Loaded         bool                 `json:"loaded"`
	Context        models.ReviewContext `json:"context"`
	FirstApprover  uuid.UUID            `json:"first_approver,omitempty"`
	FirstAmount    int64                `json:"first_amount,omitempty"`
	Rejecter       uuid.UUID            `json:"rejecter,omitempty"`
	AppealDeadline time.Time            `json:"appeal_deadline,omitempty"`
	AppealClosed   bool                 `json:"appeal_closed,omitempty"`
	Appealed       bool                 `json:"appealed,omitempty"`
	InfoDue        time.Time            `json:"info_due,omitempty"`
	InfoSeq        int                  `json:"info_seq,omitempty"`
}

type claimWorkflow struct {
	state State
	rv    ReviewState
	busy  bool        // an update or a timer is changing the claim
	acts  *Activities // nil receiver: only method values are used, for names
}

// Limits on free text carried by updates.
const (
	maxReasonRunes = 1000
	// reminderLead is how long before an info request's deadline the merchant
	// is reminded (at most half the period).
	reminderLead = 3 * 24 * time.Hour
)

// setup registers handlers before anything can block, so queries and updates
// work at once. Registering handlers issues no commands, so old histories replay.
func (w *claimWorkflow) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) {
		s := w.state
		rv := w.rv
		s.Review = &rv
		return s, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecision, w.decide,
		workflow.UpdateHandlerOptions{Validator: w.validateDecision}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateInfo, w.answerInfo,
		workflow.UpdateHandlerOptions{Validator: w.validateInfo}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateAppeal, w.appeal,
		workflow.UpdateHandlerOptions{Validator: w.validateAppeal})
}

func withActivityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			// no MaximumAttempts: a database outage delays a claim, it never drops it
		},
	})
}

func (w *claimWorkflow) run(ctx workflow.Context) error {
	ctx = withActivityOptions(ctx)
	version := workflow.GetVersion(ctx, versionVerification, workflow.DefaultVersion, 1)
	if err := w.moveTo(ctx, models.StatusVerifying, ""); err != nil {
		return err
	}
	if version == workflow.DefaultVersion {
		if err := w.moveTo(ctx, models.StatusInReview, ""); err != nil {
			return err
		}
	} else {
		var rc models.ReviewContext
		if err := workflow.ExecuteActivity(ctx, w.acts.Verify, w.state.ClaimID).Get(ctx, &rc); err != nil {
			return err
		}
		w.load(rc)
		if err := w.moveTo(ctx, rc.Status, rc.Note); err != nil {
			return err
		}
	}
	if err := w.review(ctx); err != nil {
		return err
	}
	// Let running update handlers finish before the workflow completes.
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// moveTo records status through an activity, then updates query state and the
// status search attribute.
func (w *claimWorkflow) moveTo(ctx workflow.Context, status, note string) error {
	change := StatusChange{ClaimID: w.state.ClaimID, EventKey: status, Status: status, Note: note}
	if err := workflow.ExecuteActivity(ctx, w.acts.RecordStatus, change).Get(ctx, nil); err != nil {
		return err
	}
	return w.setStatus(ctx, status)
}

// setStatus updates query state and the status search attribute (the
// database was written by the activity that decided the status).
func (w *claimWorkflow) setStatus(ctx workflow.Context, status string) error {
	w.state.Status = status
	w.state.Steps = append(w.state.Steps, status)
	return workflow.UpsertTypedSearchAttributes(ctx, SearchStatus.ValueSet(status))
}

func (w *claimWorkflow) load(rc models.ReviewContext) {
	w.rv.Loaded = true
	w.rv.Context = rc
}

// review waits while reviewers work: updates change the status; the loop runs
// the durable timers of the states that have them. It ends when the claim closes.
func (w *claimWorkflow) review(ctx workflow.Context) error {
	for {
		status := w.state.Status
		var err error
		switch status {
		case models.StatusClosed:
			return nil
		case models.StatusInfoRequested:
			err = w.awaitInfo(ctx)
		case models.StatusRejected:
			err = w.awaitAppealWindow(ctx)
		default:
			err = workflow.Await(ctx, func() bool { return w.state.Status != status })
		}
		if err != nil {
			return err
		}
	}
}

// lock serialises updates and timers: an activity inside a handler yields, and
// another handler must not act on the state it is about to change.
func (w *claimWorkflow) lock(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return !w.busy }); err != nil {
		return err
	}
	w.busy = true
	return nil
}

func (w *claimWorkflow) unlock() { w.busy = false }

// ensureLoaded loads the review context of a workflow that started before
// verification existed.
func (w *claimWorkflow) ensureLoaded(ctx workflow.Context) error {
	if w.rv.Loaded {
		return nil
	}
	var rc models.ReviewContext
	if err := workflow.ExecuteActivity(withActivityOptions(ctx), w.acts.LoadReview, w.state.ClaimID).Get(ctx, &rc); err != nil {
		return err
	}
	w.load(rc)
	return nil
}

func hasRole(roles []string, want ...string) bool {
	for _, r := range roles {
		for _, x := range want {
			if r == x {
				return true
			}
		}
	}
	return false
}

func textOK(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && utf8.RuneCountInString(s) <= maxReasonRunes
}

var (
	errSoD          = updateError(models.EFORBIDDEN, "segregation_of_duties", "you may not decide on this claim at this step (segregation of duties)")
	errInvalidState = updateError(models.ECONFLICT, "invalid_state", "the claim is not waiting for this action")
)

// plan is a decision resolved against the workflow's state.
type plan struct {
	action string // approve, second_approve, reject, request_info
	status string // the status it leads to
	amount int64
}

// planDecision checks a decision against the state and the program's rules.
// It changes nothing, so the validator and the handler both call it; amount
// checks wait for the review context when it is not loaded yet.
func (w *claimWorkflow) planDecision(in DecisionRequest) (plan, error) {
	rv := &w.rv
	if !hasRole(in.ActorRoles, models.RoleReviewer, models.RoleApprover) {
		return plan{}, updateError(models.EFORBIDDEN, "forbidden", "only reviewers and approvers decide on claims")
	}
	if rv.Loaded && in.ActorID == rv.Context.MerchantID || rv.Appealed && in.ActorID == rv.Rejecter {
		return plan{}, errSoD
	}
	switch in.Action {
	case models.ActionApprove, models.ActionReject, models.ActionRequestInfo:
	default:
		return plan{}, updateError(models.EINVALID, "invalid_action", "action must be approve, reject or request_info")
	}
	if in.Action == models.ActionReject {
		if !models.ValidRejectReason(in.ReasonCode) || !textOK(in.Reason) {
			return plan{}, updateError(models.EINVALID, "reason_required", "a rejection needs a reason code and a reason")
		}
	}
	if in.Action == models.ActionRequestInfo && !textOK(in.Reason) {
		return plan{}, updateError(models.EINVALID, "reason_required", "say what information is needed")
	}
	switch w.state.Status {
	case models.StatusInReview:
		switch in.Action {
		case models.ActionReject:
			return plan{action: in.Action, status: models.StatusRejected}, nil
		case models.ActionRequestInfo:
			return plan{action: in.Action, status: models.StatusInfoRequested}, nil
		}
		var amount int64
		switch {
		case in.Amount != nil && *in.Amount <= 0 || in.Amount != nil && *in.Amount > rules.MaxAmount:
			return plan{}, updateError(models.EINVALID, "invalid_amount", "the amount must be a positive number of won")
		case in.Amount != nil:
			amount, _ = rules.Truncate10(*in.Amount)
		case !rv.Loaded:
			return plan{action: in.Action, status: models.StatusApproved}, nil // resolved after loading
		case rv.Context.HasEstimate && rv.Context.Compensation > 0:
			amount = rv.Context.Compensation
		default:
			return plan{}, updateError(models.EINVALID, "amount_required", "there is no computed compensation: give the amount")
		}
		if amount <= 0 {
			return plan{}, updateError(models.EINVALID, "invalid_amount", "the amount must be at least 10 won")
		}
		if rv.Loaded && rv.Context.Rules.CompensationCap > 0 && amount > rv.Context.Rules.CompensationCap {
			return plan{}, updateError(models.EINVALID, "amount_above_cap", "the amount is above the program's cap of "+rules.FormatWon(rv.Context.Rules.CompensationCap))
		}
		status := models.StatusApproved
		if rv.Loaded && amount > rv.Context.Rules.FourEyesThreshold {
			status = models.StatusPendingSecondApproval
		}
		return plan{action: models.ActionApprove, status: status, amount: amount}, nil
	case models.StatusPendingSecondApproval:
		switch in.Action {
		case models.ActionReject:
			if in.ActorID == rv.FirstApprover {
				return plan{}, errSoD
			}
			return plan{action: in.Action, status: models.StatusRejected}, nil
		case models.ActionRequestInfo:
			return plan{}, errInvalidState
		}
		if in.ActorID == rv.FirstApprover {
			return plan{}, errSoD
		}
		if !hasRole(in.ActorRoles, models.RoleApprover) {
			return plan{}, updateError(models.EFORBIDDEN, "approver_required", "a second approval needs the approver role")
		}
		if in.Amount != nil {
			if a, _ := rules.Truncate10(*in.Amount); a != rv.FirstAmount {
				return plan{}, updateError(models.EINVALID, "amount_mismatch", "the second approval confirms the first approval's amount of "+rules.FormatWon(rv.FirstAmount))
			}
		}
		return plan{action: models.ActionSecondApprove, status: models.StatusApproved, amount: rv.FirstAmount}, nil
	}
	return plan{}, errInvalidState
}

func (w *claimWorkflow) validateDecision(ctx workflow.Context, in DecisionRequest) error {
	_, err := w.planDecision(in)
	return err
}

func (w *claimWorkflow) decide(ctx workflow.Context, in DecisionRequest) (UpdateResult, error) {
	if err := w.lock(ctx); err != nil {
		return UpdateResult{}, err
	}
	defer w.unlock()
	if err := w.ensureLoaded(ctx); err != nil {
		return UpdateResult{}, err
	}
	p, err := w.planDecision(in) // the state may have moved while this update waited
	if err != nil {
		return UpdateResult{}, err
	}
	now := workflow.Now(ctx)
	rec := models.DecisionRecord{RequestID: workflow.GetCurrentUpdateInfo(ctx).ID, ClaimID: w.state.ClaimID, Action: p.action,
		ActorID: in.ActorID, ActorRole: models.RoleReviewer, Amount: p.amount, ReasonCode: in.ReasonCode,
		Reason: strings.TrimSpace(in.Reason), StatusAfter: p.status, At: now, IP: in.IP}
	if p.action == models.ActionSecondApprove || hasRole(in.ActorRoles, models.RoleApprover) && !hasRole(in.ActorRoles, models.RoleReviewer) {
		rec.ActorRole = models.RoleApprover
	}
	if p.action == models.ActionRequestInfo {
		rec.DueAt = now.Add(time.Duration(max(1, w.rv.Context.Rules.InfoRequestDays)) * 24 * time.Hour)
	}
	var status string
	if err := workflow.ExecuteActivity(withActivityOptions(ctx), w.acts.RecordDecision, rec).Get(ctx, &status); err != nil {
		return UpdateResult{}, err
	}
	switch p.status {
	case models.StatusPendingSecondApproval:
		w.rv.FirstApprover, w.rv.FirstAmount = in.ActorID, p.amount
	case models.StatusRejected:
		w.rv.Rejecter = in.ActorID
		w.rv.AppealDeadline = now.Add(time.Duration(max(1, w.rv.Context.Rules.AppealDays)) * 24 * time.Hour)
	case models.StatusInfoRequested:
		w.rv.InfoSeq++
		w.rv.InfoDue = rec.DueAt
	}
	if err := w.setStatus(ctx, status); err != nil {
		return UpdateResult{}, err
	}
	return UpdateResult{Status: status, Amount: p.amount}, nil
}

func (w *claimWorkflow) checkInfo(in InfoRequest) error {
	if w.state.Status != models.StatusInfoRequested {
		return updateError(models.ECONFLICT, "no_open_info_request", "there is no open info request")
	}
	if w.rv.Loaded && in.ActorID != w.rv.Context.MerchantID {
		return updateError(models.EFORBIDDEN, "forbidden", "only the merchant who filed the claim answers")
	}
	if !textOK(in.Note) {
		return updateError(models.EINVALID, "note_required", "write an answer (at most 1,000 characters)")
	}
	return nil
}

func (w *claimWorkflow) validateInfo(ctx workflow.Context, in InfoRequest) error {
	return w.checkInfo(in)
}

func (w *claimWorkflow) answerInfo(ctx workflow.Context, in InfoRequest) (UpdateResult, error) {
	if err := w.lock(ctx); err != nil {
		return UpdateResult{}, err
	}
	defer w.unlock()
	if err := w.checkInfo(in); err != nil {
		return UpdateResult{}, err
	}
	a := models.InfoAnswer{RequestID: workflow.GetCurrentUpdateInfo(ctx).ID, ClaimID: w.state.ClaimID, ActorID: in.ActorID,
		Note: strings.TrimSpace(in.Note), At: workflow.Now(ctx), IP: in.IP}
	if err := workflow.ExecuteActivity(withActivityOptions(ctx), w.acts.RecordInfoAnswer, a).Get(ctx, nil); err != nil {
		return UpdateResult{}, err
	}
	if err := w.setStatus(ctx, models.StatusInReview); err != nil {
		return UpdateResult{}, err
	}
	return UpdateResult{Status: models.StatusInReview}, nil
}

// awaitInfo runs an info request's timers: a reminder before the deadline,
// then, unanswered at the deadline, the request closes and the claim returns
// to the reviewers.
func (w *claimWorkflow) awaitInfo(ctx workflow.Context) error {
	seq, due := w.rv.InfoSeq, w.rv.InfoDue
	changed := func() bool { return w.state.Status != models.StatusInfoRequested || w.rv.InfoSeq != seq }
	now := workflow.Now(ctx)
	lead := min(reminderLead, due.Sub(now)/2)
	if d := due.Add(-lead).Sub(now); d > 0 {
		done, err := workflow.AwaitWithTimeout(ctx, d, changed)
		if err != nil || done {
			return err
		}
		if err := w.lock(ctx); err != nil {
			return err
		}
		if !changed() {
			err = workflow.ExecuteActivity(ctx, w.acts.RemindInfo, Deadline{ClaimID: w.state.ClaimID,
				Key: "info-reminder-" + strconv.Itoa(seq), At: workflow.Now(ctx)}).Get(ctx, nil)
		}
		w.unlock()
		if err != nil {
			return err
		}
	}
	if d := due.Sub(workflow.Now(ctx)); d > 0 {
		done, err := workflow.AwaitWithTimeout(ctx, d, changed)
		if err != nil || done {
			return err
		}
	}
	if err := w.lock(ctx); err != nil {
		return err
	}
	defer w.unlock()
	if changed() {
		return nil
	}
	if err := workflow.ExecuteActivity(ctx, w.acts.ExpireInfo, Deadline{ClaimID: w.state.ClaimID,
		Key: "info-expired-" + strconv.Itoa(seq), At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
		return err
	}
	return w.setStatus(ctx, models.StatusInReview)
}

func (w *claimWorkflow) checkAppeal(ctx workflow.Context, in AppealRequest) error {
	switch {
	case w.state.Status != models.StatusRejected:
		return updateError(models.ECONFLICT, "invalid_state", "only a rejected claim can be appealed")
	case w.rv.Appealed:
		return updateError(models.ECONFLICT, "already_appealed", "this claim was appealed before")
	case w.rv.AppealClosed || !workflow.Now(ctx).Before(w.rv.AppealDeadline):
		return updateError(models.EINVALID, "appeal_window_closed", "the appeal window has closed")
	case w.rv.Loaded && in.ActorID != w.rv.Context.MerchantID:
		return updateError(models.EFORBIDDEN, "forbidden", "only the merchant who filed the claim appeals")
	case !textOK(in.Reason):
		return updateError(models.EINVALID, "reason_required", "give the reason for the appeal (at most 1,000 characters)")
	}
	return nil
}

func (w *claimWorkflow) validateAppeal(ctx workflow.Context, in AppealRequest) error {
	return w.checkAppeal(ctx, in)
}

func (w *claimWorkflow) appeal(ctx workflow.Context, in AppealRequest) (UpdateResult, error) {
	if err := w.lock(ctx); err != nil {
		return UpdateResult{}, err
	}
	defer w.unlock()
	if err := w.checkAppeal(ctx, in); err != nil {
		return UpdateResult{}, err
	}
	a := models.AppealRecord{RequestID: workflow.GetCurrentUpdateInfo(ctx).ID, ClaimID: w.state.ClaimID, ActorID: in.ActorID,
		Reason: strings.TrimSpace(in.Reason), RejectedBy: w.rv.Rejecter, At: workflow.Now(ctx), IP: in.IP}
	if err := workflow.ExecuteActivity(withActivityOptions(ctx), w.acts.RecordAppeal, a).Get(ctx, nil); err != nil {
		return UpdateResult{}, err
	}
	w.rv.Appealed = true
	w.state.Steps = append(w.state.Steps, models.StatusAppealed)
	if err := w.setStatus(ctx, models.StatusInReview); err != nil {
		return UpdateResult{}, err
	}
	return UpdateResult{Status: models.StatusInReview}, nil
}

// awaitAppealWindow keeps a rejection open to appeal for the program's appeal
// days (a durable timer); then the claim closes.
func (w *claimWorkflow) awaitAppealWindow(ctx workflow.Context) error {
	changed := func() bool { return w.state.Status != models.StatusRejected }
	if d := w.rv.AppealDeadline.Sub(workflow.Now(ctx)); d > 0 {
		done, err := workflow.AwaitWithTimeout(ctx, d, changed)
		if err != nil || done {
			return err
		}
	}
	if err := w.lock(ctx); err != nil {
		return err
	}
	defer w.unlock()
	if changed() {
		return nil
	}
	w.rv.AppealClosed = true
	if err := workflow.ExecuteActivity(ctx, w.acts.CloseRejected, Deadline{ClaimID: w.state.ClaimID, Key: "appeal-window-closed",
		At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
		return err
	}
	return w.setStatus(ctx, models.StatusClosed)
}
