// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title SwarmCoordinator (local, non-upgradeable)
/// @notice Same external interface as the public SwarmCoordinator 0.4.2 (signatures, errors,
/// events), so one client talks to either. Roles: owner (deployer) appoints the stage manager
/// and the bootnode manager; both start as the owner.
/// @dev Peer ids are interned as numbers (1-based, 0 = unknown) so that leaderboards sort and
/// swap cheap uint256 slots instead of strings.
contract SwarmCoordinator {
    // ---- errors (the first seven are the public contract's) ----
    error PeerIdAlreadyRegistered();
    error RewardAlreadySubmitted();
    error InvalidRoundNumber();
    error InvalidStageNumber();
    error WinnerAlreadyVoted();
    error InvalidVote();
    error InvalidVoterPeerId();
    error OnlyOwner();
    error OnlyStageManager();
    error OnlyBootnodeManager();
    error InvalidBootnodeIndex();

    // ---- events (as the public contract's) ----
    event PeerRegistered(address eoa, string peerId);
    event RewardSubmitted(address account, uint256 roundNumber, uint256 stageNumber, int256 reward, string peerId);
    event CumulativeRewardsUpdated(address account, string peerId, int256 totalRewards);
    event WinnerSubmitted(address account, string peerId, uint256 roundNumber, string[] winners);
    event RoundAdvanced(uint256 newRoundNumber);
    event StageAdvanced(uint256 roundNumber, uint256 newStage);
    event BootnodesAdded(address manager, uint256 count);

    // A sorted (count descending) list of peer numbers; pos is 1-based, 0 = absent.
    struct Board {
        uint256[] nums;
        mapping(uint256 => uint256) pos;
    }

    address public owner;
    address public stageManager;
    address public bootnodeManager;

    uint256 public currentRound;
    uint256 public currentStage;

    string[] private _bootnodes;

    string[] private _peerIds; // number - 1 -> peer id
    mapping(string => uint256) private _peerNum;
    mapping(uint256 => address) private _eoaOf;
    mapping(address => string[]) private _peerIdsOf;

    mapping(uint256 => int256) private _totalRewards;
    mapping(uint256 => mapping(uint256 => mapping(address => int256))) private _stageReward;
    mapping(uint256 => mapping(uint256 => mapping(address => bool))) private _stageSubmitted;

    mapping(uint256 => mapping(uint256 => uint256[])) private _votes; // round -> voter -> winners
    mapping(uint256 => mapping(uint256 => uint256)) private _roundVotesFor; // round -> winner -> votes
    mapping(uint256 => uint256) private _wins;
    mapping(uint256 => uint256) private _voteCount;
    Board private _winnerBoard;
    Board private _voterBoard;

    modifier onlyOwner() {
        if (msg.sender != owner) revert OnlyOwner();
        _;
    }

    modifier onlyStageManager() {
        if (msg.sender != stageManager) revert OnlyStageManager();
        _;
    }

    modifier onlyBootnodeManager() {
        if (msg.sender != bootnodeManager) revert OnlyBootnodeManager();
        _;
    }

    constructor() {
        owner = msg.sender;
        stageManager = msg.sender;
        bootnodeManager = msg.sender;
    }

    // ---- roles ----
    function setStageManager(address manager) external onlyOwner {
        stageManager = manager;
    }

    function setBootnodeManager(address manager) external onlyOwner {
        bootnodeManager = manager;
    }

    // ---- rounds and stages ----
    /// CodeZero plays one stage per round.
    function stageCount() public pure returns (uint256) {
        return 1;
    }

    /// Advances the stage; after the last one the stage wraps to 0 and the round advances.
    /// StageAdvanced is emitted on every call (with stage 0 when the round moved on).
    function updateStageAndRound() external onlyStageManager returns (uint256, uint256) {
        uint256 next = currentStage + 1;
        if (next >= stageCount()) {
            currentStage = 0;
            currentRound += 1;
            emit RoundAdvanced(currentRound);
        } else {
            currentStage = next;
        }
        emit StageAdvanced(currentRound, currentStage);
        return (currentRound, currentStage);
    }

    // ---- bootnodes ----
    function addBootnodes(string[] memory newBootnodes) external onlyBootnodeManager {
        for (uint256 i = 0; i < newBootnodes.length; i++) {
            _bootnodes.push(newBootnodes[i]);
        }
        emit BootnodesAdded(msg.sender, newBootnodes.length);
    }

    /// Removes one entry, keeping the order of the rest.
    function removeBootnode(uint256 index) external onlyBootnodeManager {
        uint256 n = _bootnodes.length;
        if (index >= n) revert InvalidBootnodeIndex();
        for (uint256 i = index; i + 1 < n; i++) {
            _bootnodes[i] = _bootnodes[i + 1];
        }
        _bootnodes.pop();
    }

    function clearBootnodes() external onlyBootnodeManager {
        delete _bootnodes;
    }

    function getBootnodes() external view returns (string[] memory) {
        return _bootnodes;
    }

    function getBootnodesCount() external view returns (uint256) {
        return _bootnodes.length;
    }

    // ---- peers ----
    /// Links msg.sender to peerId; an account may own several peer ids, a peer id one account.
    function registerPeer(string memory peerId) external {
        if (_peerNum[peerId] != 0) revert PeerIdAlreadyRegistered();
        _peerIds.push(peerId);
        uint256 num = _peerIds.length;
        _peerNum[peerId] = num;
        _eoaOf[num] = msg.sender;
        _peerIdsOf[msg.sender].push(peerId);
        emit PeerRegistered(msg.sender, peerId);
    }

    function getEoa(string[] memory peerIds) external view returns (address[] memory eoas) {
        eoas = new address[](peerIds.length);
        for (uint256 i = 0; i < peerIds.length; i++) {
            eoas[i] = _eoaOf[_peerNum[peerIds[i]]];
        }
    }

    function getPeerId(address[] memory eoas) external view returns (string[][] memory peerIds) {
        peerIds = new string[][](eoas.length);
        for (uint256 i = 0; i < eoas.length; i++) {
            peerIds[i] = _peerIdsOf[eoas[i]];
        }
    }

    /// The caller's own peer number, or InvalidVoterPeerId (unknown id or someone else's).
    function _ownedPeer(string memory peerId) private view returns (uint256 num) {
        num = _peerNum[peerId];
        if (num == 0 || _eoaOf[num] != msg.sender) revert InvalidVoterPeerId();
    }

    // ---- rewards ----
    /// One submission per (round, stage, account), for a peer id the account owns.
    function submitReward(uint256 roundNumber, uint256 stageNumber, int256 reward, string memory peerId) external {
        if (roundNumber > currentRound) revert InvalidRoundNumber();
        if (stageNumber >= stageCount()) revert InvalidStageNumber();
        uint256 num = _ownedPeer(peerId);
        if (_stageSubmitted[roundNumber][stageNumber][msg.sender]) revert RewardAlreadySubmitted();
        _stageSubmitted[roundNumber][stageNumber][msg.sender] = true;
        _stageReward[roundNumber][stageNumber][msg.sender] = reward;
        int256 total = _totalRewards[num] + reward;
        _totalRewards[num] = total;
        emit RewardSubmitted(msg.sender, roundNumber, stageNumber, reward, peerId);
        emit CumulativeRewardsUpdated(msg.sender, peerId, total);
    }

    function getTotalRewards(string[] memory peerIds) external view returns (int256[] memory totals) {
        totals = new int256[](peerIds.length);
        for (uint256 i = 0; i < peerIds.length; i++) {
            totals[i] = _totalRewards[_peerNum[peerIds[i]]];
        }
    }

    function getRoundStageReward(uint256 roundNumber, uint256 stageNumber, address[] memory accounts)
        external
        view
        returns (int256[] memory rewards)
    {
        rewards = new int256[](accounts.length);
        for (uint256 i = 0; i < accounts.length; i++) {
            rewards[i] = _stageReward[roundNumber][stageNumber][accounts[i]];
        }
    }

    function hasSubmittedRoundStageReward(uint256 roundNumber, uint256 stageNumber, address account)
        external
        view
        returns (bool)
    {
        return _stageSubmitted[roundNumber][stageNumber][account];
    }

    // ---- winner votes ----
    /// One vote per (round, voter peer id): a non-empty list of distinct registered peer ids.
    function submitWinners(uint256 roundNumber, string[] memory winners, string memory peerId) external {
        uint256 voter = _ownedPeer(peerId);
        if (roundNumber > currentRound) revert InvalidRoundNumber();
        if (_votes[roundNumber][voter].length != 0) revert WinnerAlreadyVoted();
        if (winners.length == 0) revert InvalidVote();
        uint256[] storage vote = _votes[roundNumber][voter];
        for (uint256 i = 0; i < winners.length; i++) {
            uint256 num = _peerNum[winners[i]];
            if (num == 0) revert InvalidVote();
            for (uint256 j = 0; j < i; j++) {
                if (vote[j] == num) revert InvalidVote(); // the same winner twice
            }
            vote.push(num);
            _roundVotesFor[roundNumber][num] += 1;
            _wins[num] += 1;
            _bump(_winnerBoard, _wins, num);
        }
        _voteCount[voter] += 1;
        _bump(_voterBoard, _voteCount, voter);
        emit WinnerSubmitted(msg.sender, peerId, roundNumber, winners);
    }

    function getTotalWins(string memory peerId) external view returns (uint256) {
        return _wins[_peerNum[peerId]];
    }

    function getPeerVoteCount(uint256 roundNumber, string memory peerId) external view returns (uint256) {
        return _roundVotesFor[roundNumber][_peerNum[peerId]];
    }

    function getVoterVoteCount(string memory peerId) external view returns (uint256) {
        return _voteCount[_peerNum[peerId]];
    }

    function getVoterVotes(uint256 roundNumber, string memory peerId) external view returns (string[] memory votes) {
        uint256[] storage nums = _votes[roundNumber][_peerNum[peerId]];
        votes = new string[](nums.length);
        for (uint256 i = 0; i < nums.length; i++) {
            votes[i] = _peerIds[nums[i] - 1];
        }
    }

    function uniqueVoters() external view returns (uint256) {
        return _voterBoard.nums.length;
    }

    function uniqueVotedPeers() external view returns (uint256) {
        return _winnerBoard.nums.length;
    }

    function winnerLeaderboard(uint256 start, uint256 end) external view returns (string[] memory, uint256[] memory) {
        return _slice(_winnerBoard, _wins, start, end);
    }

    function voterLeaderboard(uint256 start, uint256 end) external view returns (string[] memory, uint256[] memory) {
        return _slice(_voterBoard, _voteCount, start, end);
    }

    // ---- leaderboard internals ----
    /// Called after score[num] grew: inserts num if new, then moves it up past lower scores.
    /// Ties keep their order (earlier first), so one bump costs at most the size of a tie group.
    function _bump(Board storage board, mapping(uint256 => uint256) storage score, uint256 num) private {
        uint256 pos = board.pos[num];
        if (pos == 0) {
            board.nums.push(num);
            pos = board.nums.length;
        }
        uint256 mine = score[num];
        while (pos > 1) {
            uint256 ahead = board.nums[pos - 2];
            if (score[ahead] >= mine) break;
            board.nums[pos - 1] = ahead;
            board.pos[ahead] = pos;
            pos -= 1;
        }
        board.nums[pos - 1] = num;
        board.pos[num] = pos;
    }

    /// Entries [start, end), end clamped to the board's size; empty when start >= end.
    function _slice(Board storage board, mapping(uint256 => uint256) storage score, uint256 start, uint256 end)
        private
        view
        returns (string[] memory peerIds, uint256[] memory counts)
    {
        uint256 n = board.nums.length;
        if (end > n) end = n;
        if (start >= end) return (new string[](0), new uint256[](0));
        peerIds = new string[](end - start);
        counts = new uint256[](end - start);
        for (uint256 i = start; i < end; i++) {
            uint256 num = board.nums[i];
            peerIds[i - start] = _peerIds[num - 1];
            counts[i - start] = score[num];
        }
    }
}
