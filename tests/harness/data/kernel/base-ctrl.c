// SPDX-License-Identifier: GPL-2.0
/* a stand-in for net/mptcp/ctrl.c */
static int syn_retrans_before_fallback = 2;
