/*
 * The values MilterKit (Sources/MilterKit/LibMilter.swift) writes out itself,
 * checked against libmilter's own headers when the shim compiles. Swift does
 * not import mfapi.h's `L`-suffixed flag macros or the SMFIS_ and SMFIM_
 * macros as typed constants, so LibMilter.swift repeats them; a libmilter
 * whose values differ fails the build here instead of mis-negotiating with
 * the MTA at run time. Each line names the Swift symbol it guards: change
 * both together.
 */
#include <libmilter/mfapi.h>

#define SAME(swift, header, value) _Static_assert((header) == (value), swift " must equal " #header)

/* SMFIStatus (sfsistat, the callbacks' answers) */
SAME("SMFIStatus.continue", SMFIS_CONTINUE, 0);
SAME("SMFIStatus.reject", SMFIS_REJECT, 1);
SAME("SMFIStatus.discard", SMFIS_DISCARD, 2);
SAME("SMFIStatus.accept", SMFIS_ACCEPT, 3);
SAME("SMFIStatus.tempfail", SMFIS_TEMPFAIL, 4);
SAME("SMFIStatus.noReply", SMFIS_NOREPLY, 7);
SAME("SMFIStatus.skip", SMFIS_SKIP, 8);
SAME("SMFIStatus.allOptions", SMFIS_ALL_OPTS, 10);

/* MilterStage.symlistStage (smfi_setsymlist's stages) */
SAME("MilterStage.connect.symlistStage", SMFIM_CONNECT, 0);
SAME("MilterStage.helo.symlistStage", SMFIM_HELO, 1);
SAME("MilterStage.mail.symlistStage", SMFIM_ENVFROM, 2);
SAME("MilterStage.rcpt.symlistStage", SMFIM_ENVRCPT, 3);
SAME("MilterStage.data.symlistStage", SMFIM_DATA, 4);
SAME("MilterStage.eom.symlistStage", SMFIM_EOM, 5);

/* MilterFlags: actions (SMFIF_) and protocol steps (SMFIP_) */
SAME("MilterFlags.addHeaders", SMFIF_ADDHDRS, 0x00000001L);
SAME("MilterFlags.setSymlist", SMFIF_SETSYMLIST, 0x00000100L);
SAME("MilterFlags.noBody", SMFIP_NOBODY, 0x00000010L);
SAME("MilterFlags.noHeaders", SMFIP_NOHDRS, 0x00000020L);
SAME("MilterFlags.noEndOfHeaders", SMFIP_NOEOH, 0x00000040L);
SAME("MilterFlags.noUnknown", SMFIP_NOUNKNOWN, 0x00000100L);
SAME("MilterFlags.noData", SMFIP_NODATA, 0x00000200L);
SAME("MilterFlags.rejectedRecipients", SMFIP_RCPT_REJ, 0x00000800L);
SAME("MilterFlags.noReplyConnect", SMFIP_NR_CONN, 0x00001000L);
SAME("MilterFlags.noReplyHelo", SMFIP_NR_HELO, 0x00002000L);
SAME("MilterFlags.noReplyData", SMFIP_NR_DATA, 0x00010000L);

/* miSuccess (what libmilter's calls return on success) */
SAME("miSuccess", MI_SUCCESS, 0);
